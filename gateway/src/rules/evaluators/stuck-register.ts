import type { StuckRegisterRule } from '../schema.js';
import { layoutOf } from '../state-arena.js';
import { SEV, clearRaised, severityOf, severityRank, type Evaluator } from '../types.js';

interface StuckParams {
  metric: string;
  windowMs: number;
  minPeers: number;
  recheckMs: number;
  sev: number;
}

/** Last reading with consumption; NaN if none seen (then a new meter is no evidence for its peers). */
const LAST_USE = 1;
const FIRST_TS = 2;
const NEXT_CHECK = 3;

const LAYOUT = layoutOf([
  { name: 'sev', type: 'num', init: 0 },
  { name: 'lastUse', type: 'num', init: NaN, volatile: true },
  { name: 'firstTs', type: 'num', init: NaN },
  { name: 'nextCheck', type: 'num', init: 0 },
]);

export const stuckRegisterEvaluator: Evaluator<StuckRegisterRule, StuckParams> = {
  compile: (r) => ({
    metric: r.metric,
    windowMs: r.windowMs,
    minPeers: r.minPeers,
    recheckMs: r.recheckMs,
    sev: severityRank(r.severity),
  }),
  layout: () => LAYOUT,
  peers: true,
  evaluate(st, o, reading, p, _now, ctx) {
    const c = reading.fields[p.metric];
    if (typeof c !== 'number') return null;
    const ts = reading.ts;
    if (Number.isNaN(st[o + FIRST_TS])) st[o + FIRST_TS] = ts;
    if (c > 0) {
      st[o + LAST_USE] = ts;
      if (st[o + SEV] === 0) return null;
      return clearRaised(st, o, c, ts, 'register moving again');
    }
    const lastUse = st[o + LAST_USE]!;
    const idleSince = Number.isNaN(lastUse) ? st[o + FIRST_TS]! : lastUse;
    if (st[o + SEV] !== 0 || ts - idleSince < p.windowMs || ts < st[o + NEXT_CHECK]! || !ctx.peers)
      return null;
    // Counting peers is O(site); do it at most once per recheck period for a candidate.
    st[o + NEXT_CHECK] = ts + p.recheckMs;
    let consuming = 0;
    for (const peer of ctx.peers.members) {
      if (peer !== o && ts - st[peer + LAST_USE]! < p.windowMs) consuming++;
    }
    if (consuming < p.minPeers) return null;
    st[o + SEV] = p.sev;
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
