import type { NightFlowRule } from '../schema.js';
import { TzClock } from '../tz-clock.js';
import { layoutOf } from '../state-arena.js';
import {
  SEV,
  STATE_CHANGED,
  clearRaised,
  severityOf,
  severityRank,
  type Evaluator,
  type RuleChange,
} from '../types.js';
import { fmt } from './levels.js';

interface NightFlowParams {
  metric: string;
  from: number;
  to: number;
  clock: TzClock;
  above: number;
  minSamples: number;
  sev: number;
  window: string;
}

/** Local day on which the open window started; NaN when no window is open. */
const KEY = 1;
/** Lowest flow seen in the open window. */
const MIN = 2;
const N = 3;

const LAYOUT = layoutOf([
  { name: 'sev', type: 'num', init: 0 },
  { name: 'key', type: 'num', init: NaN },
  { name: 'min', type: 'num', init: NaN },
  { name: 'n', type: 'num', init: 0, volatile: true },
]);

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** The window key at `ts`, or NaN outside the window. Windows may span midnight (23:00-05:00). */
function windowKey(p: NightFlowParams, ts: number): number {
  const m = p.clock.minuteOfDay(ts);
  if (p.from < p.to) return m >= p.from && m < p.to ? p.clock.day(ts) : NaN;
  if (m >= p.from) return p.clock.day(ts);
  return m < p.to ? p.clock.day(ts) - 1 : NaN;
}

/** The night is over: a leak shows as a minimum flow that never dropped below the threshold. */
function finish(st: Float64Array, o: number, p: NightFlowParams, ts: number): RuleChange | null {
  const min = st[o + MIN]!;
  st[o + KEY] = NaN;
  if (st[o + N]! < p.minSamples) return null;
  if (min > p.above) {
    if (st[o + SEV] !== 0) return null;
    st[o + SEV] = p.sev;
    return {
      type: 'raise',
      severity: severityOf(p.sev),
      value: min,
      ts,
      message: `night flow ${p.window}: ${p.metric} never below ${fmt(min)} (threshold ${fmt(p.above)})`,
    };
  }
  if (st[o + SEV] === 0) return null;
  return clearRaised(st, o, min, ts, `night flow ${p.window} fell to ${fmt(min)}`);
}

export const nightFlowEvaluator: Evaluator<NightFlowRule, NightFlowParams> = {
  compile: (r) => ({
    metric: r.metric,
    from: minutes(r.from),
    to: minutes(r.to),
    clock: new TzClock(r.timeZone),
    above: r.above,
    minSamples: r.minSamples,
    sev: severityRank(r.severity),
    window: `${r.from}-${r.to}`,
  }),
  layout: () => LAYOUT,
  evaluate(st, o, reading, p) {
    const v = reading.fields[p.metric];
    if (typeof v !== 'number') return null;
    const key = windowKey(p, reading.ts);
    const open = st[o + KEY]!;
    if (key === open) {
      if (v < st[o + MIN]!) st[o + MIN] = v;
      st[o + N]++;
      return null;
    }
    const done = Number.isNaN(open) ? null : finish(st, o, p, reading.ts);
    if (!Number.isNaN(key)) {
      st[o + KEY] = key;
      st[o + MIN] = v;
      st[o + N] = 1;
    }
    return done;
  },
  tick(st, o, p, now) {
    const open = st[o + KEY]!;
    if (Number.isNaN(open) || windowKey(p, now) === open) return null;
    // The window closed: saved even when it raised nothing, or a restart would judge it again.
    return finish(st, o, p, now) ?? STATE_CHANGED;
  },
};
