/** Local calendar facts a demand curve needs, for a site at a fixed UTC offset. */
export interface LocalTime {
  /** Hour of the day, fractional, 0 ≤ h < 24. */
  hour: number;
  /** 0 = Sunday … 6 = Saturday. */
  weekday: number;
  /** Day of the year, 0-based, fractional (for seasons). */
  dayOfYear: number;
}

const DAY_MS = 86_400_000;

export function localTime(nowMs: number, utcOffsetMin: number): LocalTime {
  const local = nowMs + utcOffsetMin * 60_000;
  const days = Math.floor(local / DAY_MS);
  const hour = (local - days * DAY_MS) / 3_600_000;
  // 1970-01-01 was a Thursday.
  const weekday = (((days + 4) % 7) + 7) % 7;
  const d = new Date(days * DAY_MS);
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  return { hour, weekday, dayOfYear: (local - yearStart) / DAY_MS };
}

export const isWeekend = (t: LocalTime): boolean => t.weekday === 0 || t.weekday === 6;

const bump = (h: number, centre: number, width: number): number =>
  Math.exp(-0.5 * ((h - centre) / width) ** 2);

/**
 * Household use relative to its morning peak (0…1): a morning and an evening peak, a smaller
 * midday one, a later and broader morning at weekends, and nothing between 01:30 and 04:30
 * (households sleep; this is what lets a real leak stand out in the night-flow window).
 */
export function householdProfile(t: LocalTime): number {
  const h = t.hour;
  if (h >= 1.5 && h < 4.5) return 0;
  const weekend = isWeekend(t);
  const morning = weekend ? 0.9 * bump(h, 9, 1.6) : bump(h, 7, 1);
  const midday = (weekend ? 0.5 : 0.3) * bump(h, 12.5, 1.3);
  const evening = 0.85 * bump(h, 19.5, 1.6);
  const base = h >= 6 && h < 23 ? 0.05 : 0.01;
  return Math.min(1, morning + midday + evening + base);
}

/** Offices and shops: open hours only, shorter at weekends, closed at night. */
export function commercialProfile(t: LocalTime): number {
  const h = t.hour;
  const [open, close, scale] = isWeekend(t) ? [9, 17, 0.4] : [7, 20, 1];
  if (h < open || h >= close) return 0;
  return scale * (0.6 + 0.4 * bump(h, 11.5, 2) + 0.3 * bump(h, 15, 1.5));
}

/** Draw on a water network or a tank: never zero, highest at the household peaks. */
export function networkProfile(t: LocalTime): number {
  return 0.2 + 0.8 * householdProfile(t);
}

/** Outdoor air temperature (°C) for heating demand: seasonal and daily swings (northern mid-latitude). */
export function outdoorTempC(t: LocalTime): number {
  const seasonal = 13 - 12 * Math.cos((2 * Math.PI * (t.dayOfYear - 20)) / 365);
  const daily = -4 * Math.cos((2 * Math.PI * (t.hour - 3)) / 24);
  return seasonal + daily;
}

/** Mains water temperature (°C): follows the season with a lag and a smaller amplitude. */
export function mainsWaterTempC(t: LocalTime): number {
  return 14 - 6 * Math.cos((2 * Math.PI * (t.dayOfYear - 40)) / 365);
}
