import type { Quality } from './api.js';

/** What the live stream's reading events say about quality (ADR 0070). */
export interface ReadingQuality {
  /** Absent: good. Without `qualities`, the quality of every value. */
  quality?: Quality;
  /** The quality of each value that is not good, by metric. */
  qualities?: Record<string, Quality>;
}

/** The quality of one metric's value in a live reading. */
export function qualityIn(r: ReadingQuality, metric: string): Quality {
  if (r.quality === undefined) return 'good';
  return r.qualities ? (r.qualities[metric] ?? 'good') : r.quality;
}
