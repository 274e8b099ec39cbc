/**
 * Dew point by the Magnus formula with the Sonntag (1990) constants over water, accurate to
 * about ±0.35 °C between -45 and 60 °C, which covers every server room and plant room.
 */
const B = 17.62;
const C = 243.12;

/** Dew point in °C, rounded to 2 decimals. `humidityPct` must be > 0 (ln(0) is -∞). */
export function dewPointC(temperatureC: number, humidityPct: number): number {
  const gamma = Math.log(humidityPct / 100) + (B * temperatureC) / (C + temperatureC);
  return Math.round(((C * gamma) / (B - gamma)) * 100) / 100;
}
