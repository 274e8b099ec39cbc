/**
 * Rule evaluation alone: the default rule pack over 10,000 devices of the four kinds, readings
 * generated beforehand, one core. Prints readings/s (one metric value = one reading) and
 * messages/s (one Reading object), the median of 3 runs, and memory per device (heap and the
 * rule-state array); records the figures in bench/RESULTS.md under "## Rules".
 *
 *   npx tsx bench/rules.ts
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Reading } from '../gateway/src/core/types.js';
import { ALARM_MIGRATIONS } from '../gateway/src/alarms/index.js';
import { AlarmStore } from '../gateway/src/alarms/store.js';
import { RuleEngine } from '../gateway/src/rules/engine.js';
import { openDb } from '../gateway/src/storage/db.js';
import { parseRules } from '../gateway/src/rules/schema.js';
import type { DeviceFacts } from '../gateway/src/rules/types.js';

const DEVICES = 10_000;
const SITES = 100;
const ROUNDS = 31; // round 0 binds every device (not timed), then 30 timed rounds
const RUNS = 3;
const KINDS = ['gas-meter', 'water-meter', 'chlorination', 'env-probe'] as const;
const T0 = Date.UTC(2026, 0, 1, 8);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// Deterministic noise so runs are comparable.
let seed = 42;
function rnd(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const n = (mid: number, spread: number) => mid + (rnd() - 0.5) * 2 * spread;

const facts: DeviceFacts[] = [];
for (let i = 0; i < DEVICES; i++) {
  const kind = KINDS[i % 4]!;
  facts.push({
    site: `site${i % SITES}`,
    device: `dev${i}`,
    kind,
    critical: i % 50 === 0,
    reportIntervalSec: kind === 'gas-meter' || kind === 'water-meter' ? 900 : 60,
    ratedMaxFlow: kind === 'gas-meter' ? 6 : kind === 'water-meter' ? 2500 : undefined,
  });
}
const factsIndex = new Map(facts.map((f) => [`${f.site}/${f.device}`, f]));

function fieldsFor(kind: string, i: number, r: number): Reading['fields'] {
  // About one device in 200 drifts into an abnormal value now and then, so transitions happen too.
  const odd = i % 200 === 7 && r % 10 > 6;
  switch (kind) {
    case 'gas-meter':
      return {
        volume_m3: 1000 + r * 0.01,
        flow_m3h: r % 5 === 0 ? 0 : n(0.4, 0.2),
        pressure_kpa: odd ? 1.2 : n(2, 0.2),
        battery_pct: n(80, 1),
        valve_open: true,
        tamper: false,
        balance_m3: n(50, 1),
        consumption_m3: n(0.01, 0.005),
      };
    case 'water-meter':
      return {
        volume_m3: 500 + r * 0.02,
        flow_lph: r % 4 === 0 ? 0 : n(200, 100),
        pressure_kpa: n(300, 20),
        battery_pct: n(70, 1),
        reverse_flow: false,
        tamper: odd,
        temperature_c: n(12, 1),
        consumption_m3: n(0.02, 0.01),
      };
    case 'chlorination':
      return {
        free_chlorine_mgl: odd ? 0.2 : n(0.6, 0.05),
        total_chlorine_mgl: n(0.8, 0.05),
        ph: n(7.2, 0.1),
        turbidity_ntu: n(0.3, 0.1),
        orp_mv: n(650, 20),
        level_pct: n(60, 2),
        temperature_c: n(15, 0.5),
        dosing_pump_on: true,
      };
    default:
      return {
        temperature_c: odd ? 29 : n(22, 0.5),
        humidity_pct: n(45, 3),
        dew_point_c: n(9.5, 0.5),
        smoke: false,
        water_leak: false,
        door_open: false,
      };
  }
}

const rounds: Reading[][] = [];
let fieldCount = 0;
for (let r = 0; r < ROUNDS; r++) {
  const round: Reading[] = [];
  for (let i = 0; i < DEVICES; i++) {
    const f = facts[i]!;
    const fields = fieldsFor(f.kind, i, r);
    if (r > 0) fieldCount += Object.keys(fields).length;
    round.push({ site: f.site, kind: f.kind, device: f.device, ts: T0 + r * 60_000 + i, fields });
  }
  rounds.push(round);
}
const timedMessages = (ROUNDS - 1) * DEVICES;
const rules = parseRules();
const lookup = { get: (s: string, d: string) => factsIndex.get(`${s}/${d}`) };

interface Run {
  seconds: number;
  transitions: number;
  heapPerDevice: number;
  tickMs: number;
  bindings: number;
}

/** The JS heap plus array buffers, where the engine keeps its rule state as doubles. */
function memory(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function run(): Run {
  gc();
  const before = memory();
  let transitions = 0;
  const engine = new RuleEngine({ rules, facts: lookup, listener: (b) => (transitions += b.length) });
  engine.processBatch(rounds[0]!);
  const t = process.hrtime.bigint();
  for (let r = 1; r < ROUNDS; r++) engine.processBatch(rounds[r]!);
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  const tt = process.hrtime.bigint();
  engine.tick(T0 + ROUNDS * 60_000);
  const tickMs = Number(process.hrtime.bigint() - tt) / 1e6;
  gc();
  const heapPerDevice = (memory() - before) / DEVICES;
  const bindings = engine.stats().bindings;
  return { seconds, transitions, heapPerDevice, tickMs, bindings };
}

const results: Run[] = [];
for (let i = 0; i < RUNS; i++) {
  const r = run();
  results.push(r);
  console.log(
    `run ${i + 1}: ${(fieldCount / r.seconds / 1e6).toFixed(2)} M readings/s, ${(timedMessages / r.seconds / 1e6).toFixed(2)} M messages/s, ` +
      `${r.transitions} transitions, tick ${r.tickMs.toFixed(1)} ms, memory ${(r.heapPerDevice / 1024).toFixed(2)} KiB/device`,
  );
}
/**
 * Saving rule state (every alarms.saveRuleStateMs): the former full save (snapshotState() with its
 * JSON round trip, then one upsert per device) against the incremental one (takeDirtyState() of the
 * devices that changed, serialised once), into alarms.db on disk. Median of 5 of each.
 */
interface SaveFigures {
  fullMs: number;
  allDirtyMs: number;
  onePctMs: number;
  onePctRows: number;
}
function saveBench(): SaveFigures {
  const dir = mkdtempSync(join(tmpdir(), 'fgw-bench-save-'));
  const db = openDb(join(dir, 'alarms.db'), ALARM_MIGRATIONS);
  const store = new AlarmStore(db);
  const engine = new RuleEngine({ rules, facts: lookup });
  engine.processBatch(rounds[0]!);
  engine.processBatch(rounds[1]!);
  const time = (fn: () => void) => {
    const t = process.hrtime.bigint();
    fn();
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const full: number[] = [];
  const all: number[] = [];
  const one: number[] = [];
  let onePctRows = 0;
  for (let i = 0; i < 5; i++) {
    full.push(time(() => store.saveRuleState(engine.snapshotState(), Date.now())));
    engine.processBatch(rounds[2 + 2 * i]!); // every device reported since the last save
    all.push(
      time(() => {
        const d = engine.takeDirtyState();
        store.saveRuleStateRows(d.rows, d.readRate, Date.now());
      }),
    );
    // 1 % of the devices reported since the last save.
    engine.processBatch(rounds[3 + 2 * i]!.filter((_, k) => k % 100 === i));
    one.push(
      time(() => {
        const d = engine.takeDirtyState();
        onePctRows = d.rows.length;
        store.saveRuleStateRows(d.rows, d.readRate, Date.now());
      }),
    );
  }
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return { fullMs: med(full), allDirtyMs: med(all), onePctMs: med(one), onePctRows };
}
const save = saveBench();
console.log(
  `rule-state save, ${DEVICES} devices: full snapshot ${save.fullMs.toFixed(1)} ms, incremental all changed ${save.allDirtyMs.toFixed(1)} ms, ` +
    `incremental 1 % changed (${save.onePctRows} devices) ${save.onePctMs.toFixed(1)} ms`,
);

const median = [...results].sort((a, b) => a.seconds - b.seconds)[Math.floor(RUNS / 2)]!;
const readingsPerSec = fieldCount / median.seconds;
const messagesPerSec = timedMessages / median.seconds;
const heapMedian = [...results.map((r) => r.heapPerDevice)].sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
const nproc = cpus().length;
const summary = {
  readingsPerSec: Math.round(readingsPerSec),
  messagesPerSec: Math.round(messagesPerSec),
  heapPerDeviceBytes: Math.round(heapMedian),
};
console.log(JSON.stringify(summary));

const section = `## Rules

Command: \`npx tsx bench/rules.ts\` (nproc ${nproc}, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, load average ${loadavg()[0]!.toFixed(1)} at the end: the 2 cores were shared with other work), ${new Date().toISOString().slice(0, 10)}.

Rule evaluation alone (\`RuleEngine.processBatch\`), the default rule pack, ${DEVICES.toLocaleString('en')} devices
(2,500 each of gas-meter, water-meter, chlorination, env-probe; ${SITES} sites; 2 % critical assets),
${ROUNDS - 1} rounds of pre-generated readings (${timedMessages.toLocaleString('en')} messages, ${fieldCount.toLocaleString('en')} metric values), one core, median of ${RUNS} runs.
About one device in 200 drifts out of range now and then so transitions are part of the load.

| figure | value |
|---|---|
| readings/s (one metric value each) | ${(readingsPerSec / 1e6).toFixed(2)} M |
| messages/s (one Reading object each) | ${(messagesPerSec / 1e6).toFixed(2)} M |
| (device, rule) bindings | ${median.bindings.toLocaleString('en')} |
| transitions in a run | ${median.transitions} |
| tick() over all devices | ${median.tickMs.toFixed(1)} ms |
| memory per device (rule state, after GC: heap and the state array) | ${(heapMedian / 1024).toFixed(2)} KiB |
| rule-state save, ${DEVICES.toLocaleString('en')} devices: full snapshot (before) | ${save.fullMs.toFixed(1)} ms |
| rule-state save, incremental, every device changed | ${save.allDirtyMs.toFixed(1)} ms |
| rule-state save, incremental, 1 % changed (${save.onePctRows} devices) | ${save.onePctMs.toFixed(1)} ms |

Target: 1,000,000 readings/s on one core. Rule-state saves (into \`alarms.db\` on disk, median of 5):
the full save JSON round-trips every device's state and upserts every row; the incremental one
serialises once and writes only the devices whose state changed since the last save.
`;

const file = new URL('./RESULTS.md', import.meta.url);
const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n';
// Only this section is ours; others' sections stay as they are.
const re = /## Rules\n[\s\S]*?(?=\n## |$)/;
const next = re.test(current)
  ? current.replace(re, section.trimEnd() + '\n')
  : current.trimEnd() + '\n\n' + section;
writeFileSync(file, next);
