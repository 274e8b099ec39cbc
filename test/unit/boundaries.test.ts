import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { describe, expect, it } from 'vitest';

/**
 * The module boundaries of .dependency-cruiser.mjs (run by `npm run lint`): they fire on a fixture
 * tree that breaks each of them once, and the real tree breaks none.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../fixtures/boundaries', import.meta.url));

async function violations(baseDir: string): Promise<string[]> {
  const options = await extractDepcruiseOptions(`${ROOT}.dependency-cruiser.mjs`);
  const tsConfig = extractTSConfig(`${ROOT}tsconfig.json`);
  const res = await cruise(
    ['gateway', 'adapters', 'simulators'],
    { ...options, baseDir, tsConfig: { fileName: `${ROOT}tsconfig.json` } },
    undefined,
    { tsConfig },
  );
  const out = res.output as ICruiseResult;
  return [...new Set(out.summary.violations.map((v) => `${v.rule.name} ${v.from}`))].sort();
}

describe('module boundaries', () => {
  it('fire on each kind of import the architecture forbids', async () => {
    const found = await violations(FIXTURE);
    expect(found).toEqual(
      [
        'adapters-core-contract-only adapters/fake/bad-pipeline.ts',
        'core-knows-no-domain gateway/src/core/bad-metrics.ts',
        'domain-not-http gateway/src/alarms/bad-http.ts',
        'flow-alarms gateway/src/alarms/bad-http.ts',
        'flow-ingest gateway/src/ingest/bad-engine-call.ts',
        'flow-workorders gateway/src/workorders/bad-store.ts',
        'ingest-nothing-downstream gateway/src/ingest/bad-outbox.ts',
        'sinks-are-a-branch gateway/src/alarms/bad-sink.ts',
        'no-dev-deps-in-service gateway/src/rules/bad-dev-dep.ts',
        'http-only-in-http gateway/src/workorders/bad-routes.ts',
        'no-circular gateway/src/rules/bad-cycle-a.ts',
        'simulators-no-gateway-internals simulators/bad-engine.ts',
      ].sort(),
    );
    // Every allowed import in the fixture (files not named bad-*) passes.
    expect(found.filter((v) => !v.includes('/bad-'))).toEqual([]);
  }, 60_000);

  it('hold on the real tree', async () => {
    expect(await violations(ROOT)).toEqual([]);
  }, 60_000);
});
