import type { ConsumptionSlowRule } from '../schema.js';
import { TzClock } from '../tz-clock.js';
import { layoutOf } from '../state-arena.js';
import {
  SEV,
  STATE_CHANGED,
  clearRaised,
  severityOf,
  severityRank,
  type BindCtx,
  type Evaluator,
  type RuleChange,
  type StateChanged,
} from '../types.js';
import { fmt } from './levels.js';

/**
 * A meter running slow ("慢"): one reading of a household meter is too irregular to judge low,
 * a day is not. At each day boundary of the rule clock the day's consumption is compared with
 * the median of the meter's own last complete days; a day far below it is a fault only if the
 * other meters of the site had a normal day (a warm day or a holiday lowers them all).
 * A day without any consumption is the stuck-register rule's case (or a vacant home), not this one.
 */

interface SlowParams {
  metric: string;
  historyDays: number;
  minHistoryDays: number;
  ratio: number;
  minBaseline: number;
  minPeers: number;
  peerShare: number;
  gapIntervals: number;
  clock: TzClock;
  sev: number;
}

/** Local day being summed; NaN before the first reading and right after a day closed by tick(). */
const DAY = 1;
const SUM = 2;
/** The day's first reading followed the previous one within the gap (the day is whole at its start). */
const START_OK = 3;
const LAST = 4;
/** Next slot of the ring of complete days' consumption (`hist`, NaN: empty). */
const HEAD = 5;
/** The last closed day and its verdict (1 normal, 0 low, NaN not judged), read by peers closing after it. */
const CLOSED_DAY = 6;
const VERDICT = 7;
/** Gap that still counts as reporting, from the device's interval (set by attach, not restored). */
const GAP_MS = 8;
/**
 * Length of `hist`: its own rule's historyDays (set by attach). Peers read it, not theirs: an
 * override may give meters of one site histories of different lengths.
 */
const DAYS = 9;
const HIST = 10;

const NORMAL = 1;
const LOW = 0;

/** Median of the complete days learnt, or NaN with fewer than minHistoryDays. Runs once a day per meter. */
function baseline(st: Float64Array, o: number, p: SlowParams): number {
  const v: number[] = [];
  const days = st[o + DAYS]!;
  for (let i = 0; i < days; i++) {
    const x = st[o + HIST + i]!;
    if (!Number.isNaN(x)) v.push(x);
  }
  if (v.length < p.minHistoryDays) return NaN;
  v.sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

function verdictOf(st: Float64Array, o: number, p: SlowParams, sum: number, complete: boolean): number {
  if (!complete) return NaN;
  const b = baseline(st, o, p);
  if (!(b >= p.minBaseline) || b === 0) return NaN;
  return sum >= p.ratio * b ? NORMAL : LOW;
}

/** A peer's verdict on `day`, whether or not the peer has closed that day yet (no mutation). */
function peerVerdict(st: Float64Array, peer: number, p: SlowParams, day: number, now: number): number {
  if (st[peer + CLOSED_DAY] === day) return st[peer + VERDICT]!;
  if (st[peer + DAY] !== day) return NaN;
  const complete = st[peer + START_OK] !== 0 && now - st[peer + LAST]! <= st[peer + GAP_MS]!;
  return verdictOf(st, peer, p, st[peer + SUM]!, complete);
}

function learn(st: Float64Array, o: number, p: SlowParams, c: number): void {
  const head = st[o + HEAD]!;
  st[o + HIST + head] = c;
  st[o + HEAD] = (head + 1) % p.historyDays;
}

function closeDay(st: Float64Array, o: number, p: SlowParams, now: number, ctx: BindCtx): RuleChange | null {
  const day = st[o + DAY]!;
  const c = st[o + SUM]!;
  const complete = st[o + START_OK] !== 0 && now - st[o + LAST]! <= st[o + GAP_MS]!;
  const verdict = verdictOf(st, o, p, c, complete);
  st[o + DAY] = NaN;
  st[o + SUM] = 0;
  st[o + CLOSED_DAY] = day;
  st[o + VERDICT] = verdict;
  if (verdict === NORMAL) {
    learn(st, o, p, c);
    if (st[o + SEV] === 0) return null;
    return clearRaised(st, o, c, now, 'daily consumption back to its usual level');
  }
  if (verdict !== LOW) {
    // Still learning (no baseline yet): whole days with consumption teach the baseline.
    if (complete && c > 0) learn(st, o, p, c);
    return null;
  }
  if (c <= 0) return null;
  let judged = 0;
  let normal = 0;
  if (ctx.peers) {
    for (const peer of ctx.peers.members) {
      if (peer === o) continue;
      const v = peerVerdict(st, peer, p, day, now);
      if (Number.isNaN(v)) continue;
      judged++;
      if (v === NORMAL) normal++;
    }
  }
  if (normal < p.minPeers || normal < p.peerShare * judged) {
    // The whole site used little: a real low day, part of this meter's history.
    learn(st, o, p, c);
    return null;
  }
  // A slow day is not learnt, or after a few days the slow meter would look normal to itself.
  if (st[o + SEV] !== 0) return null;
  st[o + SEV] = p.sev;
  const b = baseline(st, o, p);
  return {
    type: 'raise',
    severity: severityOf(p.sev),
    value: c,
    ts: now,
    message:
      `day's consumption ${fmt(c)}, ${Math.round((c / b) * 100)} % of the meter's median ${fmt(b)} ` +
      `while ${normal} of ${judged} meters of the site consumed as usual: meter running slow`,
  };
}

export const consumptionSlowEvaluator: Evaluator<ConsumptionSlowRule, SlowParams> = {
  compile: (r) => ({
    metric: r.metric,
    historyDays: r.historyDays,
    minHistoryDays: r.minHistoryDays,
    ratio: r.ratio,
    minBaseline: r.minBaseline,
    minPeers: r.minPeers,
    peerShare: r.peerShare,
    gapIntervals: r.gapIntervals,
    clock: new TzClock(r.timeZone),
    sev: severityRank(r.severity),
  }),
  layout: (p) =>
    layoutOf([
      { name: 'sev', type: 'num', init: 0 },
      { name: 'day', type: 'num', init: NaN },
      { name: 'sum', type: 'num', init: 0, volatile: true },
      { name: 'startOk', type: 'bool' },
      { name: 'last', type: 'num', init: NaN, volatile: true },
      { name: 'head', type: 'num', init: 0 },
      { name: 'closedDay', type: 'num', init: NaN },
      { name: 'verdict', type: 'num', init: NaN },
      { name: 'gapMs', type: 'num', init: NaN },
      { name: 'days', type: 'num', init: p.historyDays },
      { name: 'hist', type: 'nums', n: p.historyDays },
    ]),
  peers: true,
  init(st, o, p, ctx) {
    st[o + GAP_MS] = p.gapIntervals * ctx.reportIntervalMs;
  },
  attach(st, o, p, ctx) {
    st[o + GAP_MS] = p.gapIntervals * ctx.reportIntervalMs;
    st[o + DAYS] = p.historyDays;
  },
  evaluate(st, o, reading, p, _now, ctx) {
    const c = reading.fields[p.metric];
    if (typeof c !== 'number') return null;
    const ts = reading.ts;
    const day = p.clock.day(ts);
    let ch: RuleChange | null = null;
    if (day !== st[o + DAY]) {
      // A late reading of a day already closed adds nothing: that day was judged.
      if (day <= st[o + CLOSED_DAY]!) {
        st[o + LAST] = ts;
        return null;
      }
      if (!Number.isNaN(st[o + DAY])) ch = closeDay(st, o, p, ts, ctx);
      st[o + DAY] = day;
      st[o + SUM] = 0;
      st[o + START_OK] = ts - st[o + LAST]! <= st[o + GAP_MS]! ? 1 : 0;
    }
    st[o + SUM] += c;
    st[o + LAST] = ts;
    return ch;
  },
  tick(st, o, p, now, ctx): RuleChange | StateChanged | null {
    const day = st[o + DAY]!;
    if (Number.isNaN(day) || p.clock.day(now) === day) return null;
    return closeDay(st, o, p, now, ctx) ?? STATE_CHANGED;
  },
};
