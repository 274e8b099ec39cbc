// Units from the metric's name (DOMAIN.md: canonical names carry their unit).
const UNITS: Array<[RegExp, string]> = [
  [/_mgl$/, 'mg/L'],
  [/_pct$/, '%'],
  [/_c$/, '°C'],
  [/_kpa$/, 'kPa'],
  [/_m3h$/, 'm³/h'],
  [/_lph$/, 'L/h'],
  [/_m3$/, 'm³'],
  [/_ntu$/, 'NTU'],
  [/_mv$/, 'mV'],
  [/^ph$/, 'pH'],
];

export function unitOf(metric: string): string {
  for (const [re, u] of UNITS) if (re.test(metric)) return u;
  return '';
}

/** `free_chlorine_mgl` → `free chlorine`. */
export function labelOf(metric: string): string {
  const u = UNITS.find(([re]) => re.test(metric));
  const base = u && metric !== 'ph' ? metric.replace(u[0], '') : metric;
  return base.replace(/_/g, ' ');
}

export function fmtValue(v: unknown): string {
  if (typeof v === 'number') {
    const a = Math.abs(v);
    return a >= 1000 ? v.toFixed(0) : a >= 100 ? v.toFixed(1) : v.toFixed(2);
  }
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  return v === null || v === undefined ? '–' : String(v);
}

export function fmtTime(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '–';
  const d = new Date(iso);
  return d.toLocaleString(undefined, {
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
  });
}

/** 1 h 05 m / 12 m 30 s / 45 s */
export function fmtDuration(ms: number): string {
  const s = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h} h ${String(m).padStart(2, '0')} m`;
  if (m > 0) return `${m} m ${String(s % 60).padStart(2, '0')} s`;
  return `${s} s`;
}

export const pct = (r: number | null | undefined): string =>
  r === null || r === undefined ? '–' : `${(r * 100).toFixed(1)} %`;
