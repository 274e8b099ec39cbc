import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Engine, payloadOf, type SimMessage } from '../../../simulators/engine/engine.js';
import { loadScenarioFile } from '../../../simulators/scenario/load.js';
import type { Values } from '../../../simulators/types.js';
import { MONDAY } from './helpers.js';

const DIR = new URL('../../../simulators/scenarios/', import.meta.url).pathname;
/** What JSON.stringify writes for the message: a failed sensor's metrics as 0, and their quality. */
const reference = (m: SimMessage): string =>
  m.bad.length === 0
    ? JSON.stringify({ ts: m.ts, ...m.values })
    : JSON.stringify({
        ts: m.ts,
        ...m.values,
        ...Object.fromEntries(m.bad.map((k) => [k, 0])),
        quality: Object.fromEntries(m.bad.map((k) => [k, 'bad'])),
      });
const withValues = (values: Values, ts = MONDAY): SimMessage => ({
  slot: 0,
  device: 'd',
  site: 's',
  kind: 'env-probe',
  topic: 't',
  qos: 1,
  transport: 'mqtt',
  ts,
  values,
  bad: [],
  silent: false,
  faults: [],
});

describe('payloadOf (hand-built JSON)', () => {
  it('is exactly JSON.stringify({ ts, ...values }) for every report of every shipped scenario', () => {
    let n = 0;
    for (const f of readdirSync(DIR)) {
      if (f === 'fleet-10k.yaml') continue;
      const sc = loadScenarioFile(`${DIR}${f}`);
      const e = new Engine(sc, { seed: 5, startTime: MONDAY });
      for (const m of e.advanceTo(MONDAY + 6 * 3_600_000)) {
        expect(payloadOf(m)).toBe(reference(m));
        n++;
      }
    }
    expect(n).toBeGreaterThan(5000);
  });

  it('matches JSON on edge values, and stays ASCII (the publisher relies on length = bytes)', () => {
    const cases: Values[] = [
      {},
      { a: -0, b: 1e21, c: 1e-7, d: -123.456, e: true, f: false },
      { nan: Number.NaN, inf: Number.POSITIVE_INFINITY, ninf: Number.NEGATIVE_INFINITY },
      { 'quote"key': 1, 'back\\slash': 2 },
    ];
    for (const v of cases) expect(payloadOf(withValues(v))).toBe(reference(withValues(v)));
    const odd = payloadOf(withValues({ 'température°': 21.5 }));
    expect(JSON.parse(odd)).toEqual({ ts: MONDAY, 'température°': 21.5 });
    expect(/^[\x20-\x7e]*$/.test(odd)).toBe(true);
  });

  it('a silent report carries only the timestamp', () => {
    const demo = loadScenarioFile(`${DIR}demo.yaml`);
    const e = new Engine(demo, { seed: 1, startTime: MONDAY });
    const id = (e.devices()[0] as { id: string }).id;
    e.startFault(id, 'silent');
    const m = e.advanceTo(MONDAY + 3_600_000).find((x) => x.device === id && x.silent) as SimMessage;
    expect(payloadOf(m)).toBe(`{"ts":${m.ts}}`);
    expect(m.faults).toEqual(['silent']);
  });
});
