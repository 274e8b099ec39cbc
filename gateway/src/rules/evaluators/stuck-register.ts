import type { StuckRegisterRule } from '../schema.js';
import { clearRaised, severityOf, severityRank, type Evaluator } from '../types.js';

interface StuckParams {
  metric: string;
  windowMs: number;
  minPeers: number;
  recheckMs: number;
  sev: number;
}

interface StuckState {
  sev: number;
  /** Last reading with consumption; NaN if none seen (then a new meter is no evidence for its peers). */
  lastUse: number;
  firstTs: number;
  nextCheck: number;
}

export const stuckRegisterEvaluator: Evaluator<StuckRegisterRule, StuckParams, StuckState> = {
  compile: (r) => ({
    metric: r.metric,
    windowMs: r.windowMs,
    minPeers: r.minPeers,
    recheckMs: r.recheckMs,
    sev: severityRank(r.severity),
  }),
  create(_p, ctx) {
    const s: StuckState = { sev: 0, lastUse: NaN, firstTs: NaN, nextCheck: 0 };
    ctx.peers?.members.add(s);
    return s;
  },
  attach(s, _p, ctx) {
    ctx.peers?.members.add(s);
  },
  evaluate(s, reading, p, _now, ctx) {
    const c = reading.fields[p.metric];
    if (typeof c !== 'number') return null;
    const ts = reading.ts;
    if (Number.isNaN(s.firstTs)) s.firstTs = ts;
    if (c > 0) {
      s.lastUse = ts;
      if (s.sev === 0) return null;
      return clearRaised(s, c, ts, 'register moving again');
    }
    const idleSince = Number.isNaN(s.lastUse) ? s.firstTs : s.lastUse;
    if (s.sev !== 0 || ts - idleSince < p.windowMs || ts < s.nextCheck || !ctx.peers) return null;
    // Counting peers is O(site); do it at most once per recheck period for a candidate.
    s.nextCheck = ts + p.recheckMs;
    let consuming = 0;
    for (const peer of ctx.peers.members as Set<StuckState>) {
      if (peer !== s && ts - peer.lastUse < p.windowMs) consuming++;
    }
    if (consuming < p.minPeers) return null;
    s.sev = p.sev;
    const days = Math.round((ts - idleSince) / 86_400_000);
    return {
      type: 'raise',
      severity: severityOf(p.sev),
      value: 0,
      ts,
      message: `no consumption for ${days} d while ${consuming} meters of the site consumed: register stuck`,
    };
  },
};
