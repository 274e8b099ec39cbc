/**
 * `npm run opcua:discover -- <endpoint> [--user <name> --password <pw> | --user-certificate <pem>
 * --user-key <pem>] [--security-mode <mode> --security-policy <policy>] [--data-dir <dir>]
 * [--max-depth <n>] [--max-references <n>] [--name <endpoint-name>]`
 *
 * The snippet goes to stdout so it can be redirected into a file; node-opcua writes its own
 * notices with console.log, some while its modules load, so console.log is sent to stderr before
 * node-opcua is imported.
 */
import { format } from 'node:util';

// eslint-disable-next-line no-console -- redirects node-opcua's console output; nothing here logs
console.log = (...args: unknown[]): void => {
  process.stderr.write(`${format(...args)}\n`);
};
const { main } = await import('./discover.js');
process.exitCode = await main();
// node-opcua keeps timers (certificate watchers) that would hold the process open.
process.exit();
