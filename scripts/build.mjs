// Compiles the service to dist/ (incremental: a rebuild with no change takes a moment), copies
// the files it reads at run time (the simulators' scenarios, the outbox's commit thread) beside
// the compiled code, and builds the web dashboard.
import { execFileSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
cpSync('simulators/scenarios', 'dist/simulators/scenarios', { recursive: true });
cpSync('gateway/src/storage/outbox-worker.mjs', 'dist/gateway/src/storage/outbox-worker.mjs');
cpSync('gateway/src/storage/checkpoint-worker.mjs', 'dist/gateway/src/storage/checkpoint-worker.mjs');

// The web dashboard (dashboards/web) into dist/dashboards/web, served by the gateway at `/`. A
// failed dashboard build fails the build (execFileSync throws, the exit code is not 0): an image
// or a start without its dashboard must not pass for a good one.
const vite = join(dirname(require.resolve('vite/package.json')), 'bin/vite.js');
execFileSync(process.execPath, [vite, 'build', '--logLevel', 'warn', '-c', 'dashboards/web/vite.config.ts'], {
  stdio: 'inherit',
});
