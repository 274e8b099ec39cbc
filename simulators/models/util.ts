/** Splits dt into equal sub-steps no longer than maxSec, so long reporting intervals integrate finely. */
export function substeps(dtSec: number, maxSec: number): { n: number; h: number } {
  if (dtSec <= 0) return { n: 0, h: 0 };
  const n = Math.max(1, Math.ceil(dtSec / maxSec));
  return { n, h: dtSec / n };
}

export const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** First-order approach of x toward target with time constant tauSec over dtSec (exact). */
export const approach = (x: number, target: number, tauSec: number, dtSec: number): number =>
  target + (x - target) * Math.exp(-dtSec / tauSec);

/** Adds to a register that rolls over to zero after registerMax (a mechanical or electronic counter). */
export function addToRegister(index: number, delta: number, registerMax: number): number {
  const span = registerMax + 0.001;
  let v = index + delta;
  if (v >= span) v -= span * Math.floor(v / span);
  return v;
}

/** Battery level after dtSec: a slow self-discharge, or the fault's fast drain. */
export function drainBattery(pct: number, dtSec: number, draining: boolean, drainPctPerHour: number): number {
  // A lithium meter cell lasts 10+ years: about 8 % a year.
  const rate = draining ? drainPctPerHour : 8 / (365 * 24);
  return Math.max(draining ? 2 : 0, pct - (rate * dtSec) / 3600);
}

/** A Poisson-distributed count with mean lambda (Knuth; lambda here is small). */
export function poisson(next: () => number, lambda: number): number {
  if (lambda <= 0) return 0;
  const limit = Math.exp(-lambda);
  let k = 0;
  let prod = next();
  while (prod > limit && k < 50) {
    k++;
    prod *= next();
  }
  return k;
}
