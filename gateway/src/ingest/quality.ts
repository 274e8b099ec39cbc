import type { Quality } from '../core/types.js';
import { Rejection } from './reasons.js';

/**
 * How a value that is not good is stored (ADR 0070): under `<metric>_bad`, with
 * `<metric>_quality` ("bad" or "uncertain") beside it, never under the metric's own name. A query
 * of the metric (the history, charts, Grafana, the report) so sees only good values without a
 * filter InfluxQL could not express (it cannot select points where a field is absent), and a bad
 * and a good value with the same timestamp merge into one point without tainting each other.
 */
export const BAD_SUFFIX = '_bad';
export const QUALITY_SUFFIX = '_quality';

const QUALITIES: ReadonlySet<string> = new Set(['good', 'uncertain', 'bad']);

/** What a payload's `quality` says: one quality for every value, or one per metric. */
export type PayloadQuality = Quality | Record<string, Quality>;

/**
 * The optional `quality` member of a JSON payload: `"bad"` for every value of the message, or
 * `{"free_chlorine_mgl": "bad"}` per metric. Undefined when absent.
 */
export function parseQuality(raw: unknown): PayloadQuality | undefined | Rejection {
  if (raw === undefined) return undefined;
  if (typeof raw === 'string') {
    if (QUALITIES.has(raw)) return raw as Quality;
  } else if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    const map = raw as Record<string, unknown>;
    for (const k in map) {
      const q = map[k];
      if (typeof q !== 'string' || !QUALITIES.has(q)) {
        return new Rejection(
          'quality_invalid',
          `quality of ${k.slice(0, 64)} must be "good", "uncertain" or "bad"`,
        );
      }
    }
    return map as Record<string, Quality>;
  }
  return new Rejection(
    'quality_invalid',
    'quality must be "good", "uncertain" or "bad", or an object of metric: quality',
  );
}

/** The worse of two qualities. */
export const worse = (a: Quality | undefined, b: Quality): Quality =>
  a === 'bad' || b === 'bad' ? 'bad' : a === 'uncertain' || b === 'uncertain' ? 'uncertain' : 'good';
