/** The benchmarks' device payloads: the four kinds with full, normal values (they raise no alarms). */
export const KINDS = ['gas-meter', 'water-meter', 'chlorination', 'env-probe'] as const;

/** A realistic full payload for each kind; meters count up so consumption is derived. */
export function payload(kind: (typeof KINDS)[number], d: number, seq: number, ts: number): string {
  const j = (d * 7919 + seq * 104729) % 1000;
  switch (kind) {
    case 'gas-meter':
      return `{"ts":${ts},"volume_m3":${(1000 + d + seq * 0.012).toFixed(3)},"flow_m3h":${(0.2 + j / 2000).toFixed(3)},"pressure_kpa":${(2 + j / 5000).toFixed(3)},"battery_pct":${80 + (j % 20)},"valve_open":true,"tamper":false,"balance_m3":${(50 - seq * 0.012).toFixed(3)}}`;
    case 'water-meter':
      return `{"ts":${ts},"volume_m3":${(500 + d + seq * 0.02).toFixed(3)},"flow_lph":${(j / 3).toFixed(1)},"pressure_kpa":${250 + (j % 50)},"battery_pct":${70 + (j % 30)},"reverse_flow":false,"tamper":false,"temperature_c":${(12 + j / 200).toFixed(2)}}`;
    case 'chlorination':
      return `{"ts":${ts},"free_chlorine_mgl":${(0.5 + j / 2000).toFixed(3)},"total_chlorine_mgl":${(0.7 + j / 2000).toFixed(3)},"ph":${(7.2 + j / 5000).toFixed(2)},"turbidity_ntu":${(0.2 + j / 5000).toFixed(3)},"orp_mv":${650 + (j % 50)},"level_pct":${(60 + j / 50).toFixed(1)},"temperature_c":${(15 + j / 200).toFixed(2)},"dosing_pump_on":true}`;
    case 'env-probe':
      return `{"ts":${ts},"temperature_c":${(22 + j / 500).toFixed(2)},"humidity_pct":${(45 + j / 100).toFixed(1)},"smoke":false,"water_leak":false,"door_open":false}`;
  }
}
