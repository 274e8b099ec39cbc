import { createRng } from '../../../simulators/rng.js';
import type { BaseState, Model, Values } from '../../../simulators/types.js';

/** 2026-01-05 00:00 UTC, a Monday in winter (heating on, cold mains water). */
export const MONDAY = Date.UTC(2026, 0, 5);

export interface Sample {
  t: number;
  v: Values;
}

/** Runs a model at its reporting interval and returns every report. */
export function run<S extends BaseState, P>(
  model: Model<S, P>,
  opts: {
    hours: number;
    params?: Partial<P>;
    faults?: string[];
    seed?: number;
    start?: number;
    dtSec?: number;
    state?: S;
  },
): { samples: Sample[]; state: S } {
  const start = opts.start ?? MONDAY;
  const rng = createRng(opts.seed ?? 1);
  let state = opts.state ?? model.init(opts.params ?? {}, start, rng);
  state = { ...state, faults: opts.faults ?? [] };
  const dt = opts.dtSec ?? model.defaultIntervalSec;
  const samples: Sample[] = [];
  for (let t = dt; t <= opts.hours * 3600; t += dt) {
    const r = model.step(state, dt, start + t * 1000, rng);
    state = r.state;
    samples.push({ t: start + t * 1000, v: r.values });
  }
  return { samples, state };
}

export const num = (s: Sample, k: string): number => {
  const v = s.v[k];
  if (typeof v !== 'number') throw new Error(`${k} is not a number: ${String(v)}`);
  return v;
};

export const series = (samples: Sample[], k: string): number[] => samples.map((s) => num(s, k));
