import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { AlarmService, ALARM_MIGRATIONS } from '../../gateway/src/alarms/index.js';
import { configSchema } from '../../gateway/src/config/schema.js';
import { Deriver } from '../../gateway/src/ingest/derive.js';
import { IngestPipeline } from '../../gateway/src/ingest/pipeline.js';
import { RegistryFacts } from '../../gateway/src/registry/facts.js';
import { DeviceRegistry } from '../../gateway/src/registry/registry.js';
import { RuleEngine } from '../../gateway/src/rules/engine.js';
import { openDb } from '../../gateway/src/storage/db.js';
import { Outbox } from '../../gateway/src/storage/outbox.js';
import { Engine, payloadOf } from '../../simulators/index.js';
import { loadScenarioFile } from '../../simulators/scenario/load.js';

/**
 * Every fault scenario of simulators/scenarios, run through the gateway's real ingest pipeline
 * (decode, validation, registry, derived values), rule engine and alarm service, in process and
 * in simulated time: each raises exactly the alarms its rule family expects, on the faulty device.
 */

const DIR = new URL('../../simulators/scenarios/', import.meta.url).pathname;
const START = Date.UTC(2026, 0, 5); // a Monday in winter, as the simulator tests use
const MIN = 60_000;
const log = pino({ level: 'silent' });
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** `device rule severity` of every alarm raised, sorted; severity is the highest it reached. */
async function runScenario(file: string, seed = 1): Promise<string[]> {
  const sc = loadScenarioFile(join(DIR, file));
  const engine = new Engine(sc, { seed, startTime: START });
  const sites = [...new Set(sc.sites.map((s) => s.id))];
  const cfg = configSchema.parse({
    ingest: { maxAgeMs: 3650 * 86_400_000, maxFutureMs: 3650 * 86_400_000 },
    // The gateway declares the devices as an installer would, with their rated flow and register.
    devices: engine.devices().map((d) => ({
      id: d.id,
      site: d.site,
      kind: d.kind,
      ...(d.ratedMaxFlow !== undefined ? { ratedMaxFlow: d.ratedMaxFlow } : {}),
      ...(d.registerMax !== undefined ? { registerMax: d.registerMax } : {}),
    })),
    // The simulated sites keep UTC; pin the night window and the day to it instead of the host's zone.
    rules: {
      overrides: sites.flatMap((site) =>
        ['water.flow.night', 'gas.consumption.slow'].map((rule) => ({
          rule,
          site,
          set: { timeZone: 'UTC' },
        })),
      ),
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'fgw-scen-'));
  dirs.push(dir);
  const outbox = new Outbox(cfg.outbox, dir, log);
  await outbox.start();
  const registry = new DeviceRegistry(cfg.devices, { kinds: cfg.kinds, startedAt: START });
  const deriver = new Deriver(outbox, registry);
  deriver.load();
  const db = openDb(':memory:', ALARM_MIGRATIONS);
  let now = START;
  const alarms = new AlarmService({ db, config: cfg.alarms, log, now: () => now });
  await alarms.start();
  const rules = new RuleEngine({
    rules: cfg.rules,
    facts: new RegistryFacts(registry),
    listener: (b) => void alarms.apply(b),
  });
  const pipeline = new IngestPipeline(cfg, registry, deriver, { appendBytes: () => {} }, null, log);
  pipeline.addListener(registry);
  pipeline.addListener({ onReading: (r) => rules.process(r) });
  for (const f of new RegistryFacts(registry).list()) rules.registerDevice(f, START);

  const end = START + (sc.duration ?? 86_400_000);
  // Step through simulated time a minute at a time, ticking as the gateway's timer would.
  for (let t = START; t <= end; t += MIN) {
    for (const m of engine.advanceTo(t)) {
      if (m.silent) continue;
      // A failed sensor's values come marked bad (`"quality": {...}`) through the same path.
      pipeline.handleMessage(m.topic, Buffer.from(payloadOf(m)), m.ts);
    }
    now = t;
    rules.tick(t);
    alarms.tick(t);
  }
  await outbox.stop();
  const rejected = Object.values(pipeline.counters.rejected).reduce((a, b) => a + b, 0);
  expect(rejected).toBe(0);
  const out = alarms.list({ state: 'all' }).map((a) => `${a.device} ${a.rule} ${a.severity}`);
  db.close();
  return [...new Set(out)].sort();
}

/** What each scenario must raise (and nothing else), by the rule family it exercises. */
const EXPECTED: Record<string, string[]> = {
  'chlorine-high': ['tank-1 chlorine.free.high warning'],
  'chlorine-low': [
    'tank-1 chlorination.dosing.off-while-falling warning',
    'tank-1 chlorine.free.low critical',
  ],
  // The analyser reads low while the water is fine: the rule cannot know, and must not guess.
  'chlorine-sensor-drift': ['tank-1 chlorine.free.low critical'],
  'gas-balance-low': ['gm-101 gas.balance.low info', 'gm-101 gas.valve.closed warning'],
  'gas-battery': ['gm-101 gas.battery.low warning'],
  // A burst also pulls the supply pressure down.
  'gas-burst': ['gm-101 gas.flow.over-rated critical', 'gm-101 gas.pressure warning'],
  'gas-leak': ['gm-101 gas.flow.continuous warning'],
  'gas-meter-fast': ['gm-101 gas.consumption.jump warning'],
  // A fifth of the gas on day 8, judged against 6 whole days of history when that day ends.
  'gas-meter-slow': ['gm-101 gas.consumption.slow warning'],
  // The first reading after 8 stuck days books 8 days of consumption at once.
  'gas-meter-stuck': ['gm-101 gas.consumption.jump warning', 'gm-101 gas.register.stuck warning'],
  'gas-pressure-high': ['gm-101 gas.pressure warning'],
  'gas-pressure-low': ['gm-101 gas.pressure warning'],
  'gas-tamper': ['gm-101 gas.tamper warning'],
  'gas-valve-closed': ['gm-101 gas.valve.closed warning'],
  'normal-day': [],
  'offline-meter': ['wm-101 device.offline info'],
  offline: ['tank-1 device.offline info'],
  'ph-high': ['tank-1 chlorination.ph warning'],
  'ph-low': ['tank-1 chlorination.ph warning'],
  'sensor-fault': ['room-1 device.offline info'],
  'serverroom-dew-point-low': ['room-1 serverroom.dew-point warning'],
  'serverroom-door': ['room-1 serverroom.door.open warning'],
  'serverroom-humidity': ['room-1 serverroom.dew-point warning', 'room-1 serverroom.humidity.high warning'],
  'serverroom-leak': ['room-1 serverroom.water-leak critical'],
  'serverroom-rate-of-rise': ['room-1 serverroom.temperature.rate warning'],
  'serverroom-smoke': ['room-1 serverroom.smoke critical'],
  'serverroom-temp-critical': [
    'room-1 serverroom.temperature critical',
    'room-1 serverroom.temperature.rate warning',
  ],
  'serverroom-temp-warning': ['room-1 serverroom.temperature warning'],
  // The tank runs low and the residual with it.
  'tank-level-low': ['tank-1 chlorination.level.low warning', 'tank-1 chlorine.free.low critical'],
  turbidity: ['tank-1 chlorination.turbidity.high warning'],
  'water-battery': ['wm-101 water.battery.low warning'],
  'water-burst': ['wm-101 water.flow.over-rated critical'],
  'water-continuous-flow': ['wm-101 water.flow.continuous warning', 'wm-101 water.flow.night warning'],
  'water-freeze': ['wm-101 water.temperature.freeze warning'],
  'water-night-flow': ['wm-101 water.flow.continuous warning', 'wm-101 water.flow.night warning'],
  'water-pressure-high': ['wm-101 water.pressure warning'],
  'water-pressure-low': ['wm-101 water.pressure warning'],
  'water-reverse-flow': ['wm-101 water.reverse-flow warning'],
  'water-tamper': ['wm-101 water.tamper warning'],
};

describe('fault scenarios raise exactly the alarms of their rule family', () => {
  const files = readdirSync(DIR).filter(
    (f) => f.endsWith('.yaml') && !['demo.yaml', 'fleet-10k.yaml'].includes(f),
  );
  for (const f of files) {
    it(f, async () => {
      const want = EXPECTED[f.replace('.yaml', '')];
      // A new scenario needs its row here before it counts as covered.
      expect(want, `no expectation for ${f}`).toBeDefined();
      expect(await runScenario(f)).toEqual(want);
    });
  }
});
