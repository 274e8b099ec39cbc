// Compiles the service to dist/ (incremental: a rebuild with no change takes a moment) and copies
// the files it reads at run time (the simulators' scenarios, the outbox's commit thread) beside
// the compiled code.
import { execFileSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
cpSync('simulators/scenarios', 'dist/simulators/scenarios', { recursive: true });
cpSync('gateway/src/storage/outbox-worker.mjs', 'dist/gateway/src/storage/outbox-worker.mjs');
