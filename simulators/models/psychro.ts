/** Magnus formula (Sonntag 1990 constants), valid from -45 °C to 60 °C over water. */
const A = 6.112;
const B = 17.62;
const C = 243.12;

/** Saturation vapour pressure in hPa at temperature t (°C). */
export function saturationVapourPressure(t: number): number {
  return A * Math.exp((B * t) / (C + t));
}

/** Dew point (°C) from vapour pressure e (hPa). */
export function dewPointFromVapour(e: number): number {
  const g = Math.log(e / A);
  return (C * g) / (B - g);
}

/** Dew point (°C) from temperature (°C) and relative humidity (%). */
export function dewPoint(t: number, rh: number): number {
  return dewPointFromVapour((rh / 100) * saturationVapourPressure(t));
}
