import type { NightFlowRule } from '../schema.js';
import { TzClock } from '../tz-clock.js';
import {
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

interface NightFlowState {
  sev: number;
  /** Local day on which the open window started; NaN when no window is open. */
  key: number;
  /** Lowest flow seen in the open window. */
  min: number;
  n: number;
}

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** The window key at `ts`, or NaN outside the window. Windows may span midnight (23:00-05:00). */
function windowKey(p: NightFlowParams, ts: number): number {
  const m = p.clock.minuteOfDay(ts);
  if (p.from < p.to) return m >= p.from && m < p.to ? p.clock.day(ts) : NaN;
  if (m >= p.from) return p.clock.day(ts);
  return m < p.to ? p.clock.day(ts) - 1 : NaN;
}

/** The night is over: a leak shows as a minimum flow that never dropped below the threshold. */
function finish(s: NightFlowState, p: NightFlowParams, ts: number): RuleChange | null {
  const { min, n } = s;
  s.key = NaN;
  if (n < p.minSamples) return null;
  if (min > p.above) {
    if (s.sev !== 0) return null;
    s.sev = p.sev;
    return {
      type: 'raise',
      severity: severityOf(p.sev),
      value: min,
      ts,
      message: `night flow ${p.window}: ${p.metric} never below ${fmt(min)} (threshold ${fmt(p.above)})`,
    };
  }
  if (s.sev === 0) return null;
  return clearRaised(s, min, ts, `night flow ${p.window} fell to ${fmt(min)}`);
}

export const nightFlowEvaluator: Evaluator<NightFlowRule, NightFlowParams, NightFlowState> = {
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
  create: () => ({ sev: 0, key: NaN, min: NaN, n: 0 }),
  evaluate(s, reading, p) {
    const v = reading.fields[p.metric];
    if (typeof v !== 'number') return null;
    const key = windowKey(p, reading.ts);
    if (key === s.key) {
      if (v < s.min) s.min = v;
      s.n++;
      return null;
    }
    const done = Number.isNaN(s.key) ? null : finish(s, p, reading.ts);
    if (!Number.isNaN(key)) {
      s.key = key;
      s.min = v;
      s.n = 1;
    }
    return done;
  },
  tick(s, p, now) {
    if (Number.isNaN(s.key) || windowKey(p, now) === s.key) return null;
    // The window closed: saved even when it raised nothing, or a restart would judge it again.
    return finish(s, p, now) ?? STATE_CHANGED;
  },
};
