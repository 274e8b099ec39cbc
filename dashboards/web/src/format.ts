import { translate, type Lang } from './i18n.js';

// Units from the metric's name (DOMAIN.md: canonical names carry their unit as a suffix).
const UNITS: Record<string, string> = {
  mgl: 'mg/L',
  pct: '%',
  c: '°C',
  kpa: 'kPa',
  m3h: 'm³/h',
  lph: 'L/h',
  m3: 'm³',
  ntu: 'NTU',
  mv: 'mV',
};
const UNIT_SUFFIX = new RegExp(`_(${Object.keys(UNITS).join('|')})$`);

export function unitOf(metric: string): string {
  if (metric === 'ph') return 'pH';
  const m = UNIT_SUFFIX.exec(metric);
  return m ? UNITS[m[1]!]! : '';
}

/** The metric's name without its unit suffix: `pump_pressure_kpa` → `pump_pressure`. */
export const stripUnit = (metric: string): string => metric.replace(UNIT_SUFFIX, '');

/** `<input type=datetime-local>` value of an instant, in local time. */
export function localInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

export function fmtValue(v: unknown, lang: Lang = 'en'): string {
  if (typeof v === 'number') {
    const a = Math.abs(v);
    return a >= 1000 ? v.toFixed(0) : a >= 100 ? v.toFixed(1) : v.toFixed(2);
  }
  if (typeof v === 'boolean') return translate(lang, v ? 'on' : 'off');
  return v === null || v === undefined ? '–' : String(v);
}

/** Month, day and time in the interface's language (not the browser's). */
export function fmtTime(iso: string | number | null | undefined, lang: Lang = 'en'): string {
  if (iso === null || iso === undefined) return '–';
  return new Date(iso).toLocaleString(lang, {
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
  });
}

/** 1 h 05 min / 12 min 30 s / 45 s, or in Chinese. */
export function fmtDuration(ms: number, lang: Lang = 'en'): string {
  const s = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number) => String(n).padStart(2, '0');
  if (h > 0) return translate(lang, 'dur_h', { h, m: two(m) });
  if (m > 0) return translate(lang, 'dur_m', { m, s: two(s % 60) });
  return translate(lang, 'dur_s', { s });
}

export const pct = (r: number | null | undefined): string =>
  r === null || r === undefined ? '–' : `${(r * 100).toFixed(1)} %`;
