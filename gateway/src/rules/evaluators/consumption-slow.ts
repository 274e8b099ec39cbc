import type { ConsumptionSlowRule } from '../schema.js';
import { TzClock } from '../tz-clock.js';
import {
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

interface SlowState {
  sev: number;
  /** Local day being summed; NaN before the first reading and right after a day closed by tick(). */
  day: number;
  sum: number;
  /** The day's first reading followed the previous one within the gap (the day is whole at its start). */
  startOk: boolean;
  last: number;
  /** Ring of complete days' consumption (NaN: empty); fixed length so a snapshot restores into it. */
  hist: number[];
  head: number;
  /** The last closed day and its verdict (1 normal, 0 low, NaN not judged), read by peers closing after it. */
  closedDay: number;
  verdict: number;
  /** Gap that still counts as reporting, from the device's interval (set by attach, not restored). */
  gapMs: number;
}

const NORMAL = 1;
const LOW = 0;

/** Median of the complete days learnt, or NaN with fewer than minHistoryDays. Runs once a day per meter. */
function baseline(s: SlowState, p: SlowParams): number {
  const v: number[] = [];
  for (const x of s.hist) if (!Number.isNaN(x)) v.push(x);
  if (v.length < p.minHistoryDays) return NaN;
  v.sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

function verdictOf(s: SlowState, p: SlowParams, sum: number, complete: boolean): number {
  if (!complete) return NaN;
  const b = baseline(s, p);
  if (!(b >= p.minBaseline) || b === 0) return NaN;
  return sum >= p.ratio * b ? NORMAL : LOW;
}

/** A peer's verdict on `day`, whether or not the peer has closed that day yet (no mutation). */
function peerVerdict(peer: SlowState, p: SlowParams, day: number, now: number): number {
  if (peer.closedDay === day) return peer.verdict;
  if (peer.day !== day) return NaN;
  return verdictOf(peer, p, peer.sum, peer.startOk && now - peer.last <= peer.gapMs);
}

function learn(s: SlowState, c: number): void {
  s.hist[s.head] = c;
  s.head = (s.head + 1) % s.hist.length;
}

function closeDay(s: SlowState, p: SlowParams, now: number, ctx: BindCtx): RuleChange | null {
  const day = s.day;
  const c = s.sum;
  const complete = s.startOk && now - s.last <= s.gapMs;
  const verdict = verdictOf(s, p, c, complete);
  s.day = NaN;
  s.sum = 0;
  s.closedDay = day;
  s.verdict = verdict;
  if (verdict === NORMAL) {
    learn(s, c);
    if (s.sev === 0) return null;
    return clearRaised(s, c, now, 'daily consumption back to its usual level');
  }
  if (verdict !== LOW) {
    // Still learning (no baseline yet): whole days with consumption teach the baseline.
    if (complete && c > 0) learn(s, c);
    return null;
  }
  if (c <= 0) return null;
  let judged = 0;
  let normal = 0;
  if (ctx.peers) {
    for (const peer of ctx.peers.members as Set<SlowState>) {
      if (peer === s) continue;
      const v = peerVerdict(peer, p, day, now);
      if (Number.isNaN(v)) continue;
      judged++;
      if (v === NORMAL) normal++;
    }
  }
  if (normal < p.minPeers || normal < p.peerShare * judged) {
    // The whole site used little: a real low day, part of this meter's history.
    learn(s, c);
    return null;
  }
  // A slow day is not learnt, or after a few days the slow meter would look normal to itself.
  if (s.sev !== 0) return null;
  s.sev = p.sev;
  const b = baseline(s, p);
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

export const consumptionSlowEvaluator: Evaluator<ConsumptionSlowRule, SlowParams, SlowState> = {
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
  create(p, ctx) {
    const s: SlowState = {
      sev: 0,
      day: NaN,
      sum: 0,
      startOk: false,
      last: NaN,
      hist: new Array<number>(p.historyDays).fill(NaN),
      head: 0,
      closedDay: NaN,
      verdict: NaN,
      gapMs: p.gapIntervals * ctx.reportIntervalMs,
    };
    ctx.peers?.members.add(s);
    return s;
  },
  attach(s, p, ctx) {
    s.gapMs = p.gapIntervals * ctx.reportIntervalMs;
    ctx.peers?.members.add(s);
  },
  evaluate(s, reading, p, _now, ctx) {
    const c = reading.fields[p.metric];
    if (typeof c !== 'number') return null;
    const ts = reading.ts;
    const day = p.clock.day(ts);
    let ch: RuleChange | null = null;
    if (day !== s.day) {
      // A late reading of a day already closed adds nothing: that day was judged.
      if (day <= s.closedDay) {
        s.last = ts;
        return null;
      }
      if (!Number.isNaN(s.day)) ch = closeDay(s, p, ts, ctx);
      s.day = day;
      s.sum = 0;
      s.startOk = ts - s.last <= s.gapMs;
    }
    s.sum += c;
    s.last = ts;
    return ch;
  },
  tick(s, p, now, ctx): RuleChange | StateChanged | null {
    if (Number.isNaN(s.day) || p.clock.day(now) === s.day) return null;
    return closeDay(s, p, now, ctx) ?? STATE_CHANGED;
  },
};
