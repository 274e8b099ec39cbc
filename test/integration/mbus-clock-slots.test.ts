import { tmpdir } from 'node:os';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mbusSchema } from '../../adapters/mbus/schema.js';
import { MbusSource } from '../../adapters/mbus/source.js';
import type { SourceContext } from '../../gateway/src/core/source.js';
import type { Reading } from '../../gateway/src/core/types.js';
import { startSimulation, type Simulation } from '../../simulators/index.js';
import { waitFor } from '../fixtures/ports.js';

const SITE = 'slots';
const POLL_MS = 300;

/**
 * Cluster mode's M-Bus rounds on the clock's slots (ADR 0177), against the simulators' meters over
 * M-Bus TCP: two sources (two members) reading the same bus stamp each round with its slot's
 * start, the same on both, so a survivor's replayed read overwrites the dead owner's in InfluxDB.
 */
describe('M-Bus rounds on clock slots', () => {
  let sim: Simulation;
  const sources: MbusSource[] = [];

  beforeAll(async () => {
    sim = await startSimulation({
      brokerUrl: null,
      mbusPort: 0,
      seed: 3,
      speed: 120,
      intervalMs: 100,
      logger: pino({ level: 'warn' }),
      scenario: { sites: [{ id: SITE, devices: [{ id: 'wm-1', kind: 'water-meter' }] }] },
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(sources.map((s) => s.stop()));
    await sim?.stop();
  });

  function context(seen: Reading[]): SourceContext {
    return {
      ingest: (r) => (seen.push(r), null),
      ingestMessage: () => undefined,
      afterDurable: (cb) => cb(),
      isFull: () => false,
      onDrain: () => () => undefined,
      publishRejected: () => undefined,
      log: pino({ level: 'silent' }),
      metrics: new Registry(),
      dataDir: tmpdir(),
    };
  }

  it('stamps every round with its slot, one reading per slot, the same slots on two members', async () => {
    const bus = sim.mbus!;
    const meter = bus.meters.find((m) => m.device === 'wm-1')!;
    const cfg = mbusSchema.parse({
      connections: [
        {
          name: 'bus',
          tcp: { host: '127.0.0.1', port: bus.port },
          pollIntervalMs: POLL_MS,
          timeoutMs: 250,
          retries: 1,
          meters: [{ id: 'wm-1', site: SITE, kind: 'water-meter', primaryAddress: meter.primaryAddress }],
        },
      ],
    }).connections[0]!;
    const seen: Reading[][] = [[], []];
    for (const s of seen) {
      const src = new MbusSource(cfg, true);
      sources.push(src);
      await src.start(context(s));
    }
    await waitFor(async () => seen.every((s) => s.length >= 8), 20_000, 'eight rounds on each');
    for (const s of seen) {
      const ts = s.map((r) => r.ts);
      for (const t of ts) expect(t % POLL_MS).toBe(0);
      expect(new Set(ts).size).toBe(ts.length);
    }
    // The rounds both members made of the same slots carry the same time.
    const a = new Set(seen[0]!.map((r) => r.ts));
    const common = seen[1]!.filter((r) => a.has(r.ts));
    expect(common.length).toBeGreaterThanOrEqual(5);
  }, 40_000);
});
