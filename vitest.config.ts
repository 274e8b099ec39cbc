import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real servers; two cores do not need more than two files at once.
    maxWorkers: 2,
    fileParallelism: true,
    projects: [
      {
        extends: true,
        test: {
          // Real servers, gateway processes, Chromium: each file in a fresh process. Listed first
          // by name ("servers" < "unit"), so the long files start first and the unit files fill the end.
          name: 'servers',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          // Pure logic on its own state: one process per worker for all of them instead of one
          // per file, which saves the start of a process and the import of the gateway's modules
          // (zod schemas, fastify, the stores) 61 times.
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          isolate: false,
        },
      },
    ],
  },
});
