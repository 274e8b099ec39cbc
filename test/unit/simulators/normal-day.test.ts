import { describe, expect, it } from 'vitest';
import { Engine, type SimMessage } from '../../../simulators/engine/engine.js';
import { dewPoint } from '../../../simulators/models/psychro.js';
import { loadScenarioFile } from '../../../simulators/scenario/load.js';

const SCENARIO = new URL('../../../simulators/scenarios/normal-day.yaml', import.meta.url).pathname;
const HOUR = 3_600_000;

/** DOMAIN.md's default thresholds, checked the way the rule pack reads them. */
function violations(msgs: SimMessage[], rated: (id: string) => number): string[] {
  const out: string[] = [];
  const byDevice = new Map<string, SimMessage[]>();
  for (const m of msgs) byDevice.set(m.device, [...(byDevice.get(m.device) ?? []), m]);
  const bad = (m: SimMessage, what: string): void =>
    void out.push(`${m.device} ${new Date(m.ts).toISOString()} ${what}`);
  for (const [, list] of byDevice) {
    const kind = list[0]?.kind;
    for (const m of list) {
      const v = m.values as Record<string, number & boolean>;
      if (kind === 'chlorination') {
        if (v.free_chlorine_mgl < 0.3 || v.free_chlorine_mgl > 2)
          bad(m, `free chlorine ${v.free_chlorine_mgl}`);
        if (v.ph < 6.5 || v.ph > 8.5) bad(m, `pH ${v.ph}`);
        if (v.turbidity_ntu > 1) bad(m, `turbidity ${v.turbidity_ntu}`);
        if (v.level_pct < 20) bad(m, `level ${v.level_pct}`);
        if (!v.dosing_pump_on) bad(m, 'dosing pump off');
      } else if (kind === 'env-probe') {
        if (v.temperature_c < 18 || v.temperature_c > 27) bad(m, `temperature ${v.temperature_c}`);
        if (v.humidity_pct > 60) bad(m, `humidity ${v.humidity_pct}`);
        const dp = dewPoint(v.temperature_c, v.humidity_pct);
        if (dp < 5.5 || dp > 15) bad(m, `dew point ${dp}`);
        if (v.smoke || v.water_leak) bad(m, 'smoke or water');
      } else if (kind === 'gas-meter') {
        if (v.pressure_kpa < 1.5 || v.pressure_kpa > 3) bad(m, `gas pressure ${v.pressure_kpa}`);
        if (!v.valve_open || v.tamper) bad(m, 'valve or tamper');
        if (v.battery_pct < 20 || v.balance_m3 < 5)
          bad(m, `battery ${v.battery_pct} balance ${v.balance_m3}`);
        if (v.flow_m3h > rated(m.device)) bad(m, `gas flow ${v.flow_m3h}`);
      } else if (kind === 'water-meter') {
        if (v.pressure_kpa < 100 || v.pressure_kpa > 450) bad(m, `water pressure ${v.pressure_kpa}`);
        if (v.reverse_flow || v.tamper || v.battery_pct < 20 || v.temperature_c < 2) bad(m, 'flags');
        if (v.flow_lph > rated(m.device)) bad(m, `water flow ${v.flow_lph}`);
      }
    }
    // Rate of rise: no 1-hour window with more than 5 °C.
    if (kind === 'env-probe')
      for (const a of list)
        for (const b of list)
          if (
            b.ts > a.ts &&
            b.ts - a.ts <= HOUR &&
            (b.values.temperature_c as number) - (a.values.temperature_c as number) > 5
          )
            bad(b, 'rising > 5 °C/h');
    // Door open longer than 10 minutes.
    if (kind === 'env-probe') {
      let openSince: number | null = null;
      for (const m of list) {
        if (m.values.door_open) openSince ??= m.ts;
        else openSince = null;
        if (openSince !== null && m.ts - openSince > 10 * 60_000) bad(m, 'door open > 10 min');
      }
    }
    // Water: at least one zero-flow reading in the day; night flow (02:00–04:00) goes below 10 L/h.
    if (kind === 'water-meter') {
      if (!list.some((m) => m.values.flow_lph === 0))
        bad(list[0] as SimMessage, 'no zero-flow interval in 24 h');
      const night = list.filter((m) => {
        const h = new Date(m.ts).getUTCHours();
        return h >= 2 && h < 4;
      });
      if (night.length > 0 && Math.min(...night.map((m) => m.values.flow_lph as number)) > 10)
        bad(night[0] as SimMessage, 'night flow');
    }
    // Gas: no 8 hours of flow without a stop.
    if (kind === 'gas-meter') {
      let since: number | null = null;
      for (const m of list) {
        if ((m.values.flow_m3h as number) > 0) since ??= m.ts;
        else since = null;
        if (since !== null && m.ts - since >= 8 * HOUR) bad(m, 'gas flowing 8 h without a stop');
      }
    }
    // Never silent for three intervals.
    for (let i = 1; i < list.length; i++) {
      const gap = (list[i] as SimMessage).ts - (list[i - 1] as SimMessage).ts;
      if (gap > 1.2 * 900_000 && kind !== 'chlorination' && kind !== 'env-probe')
        bad(list[i] as SimMessage, `gap ${gap}`);
      if (gap > 1.2 * 60_000 && (kind === 'chlorination' || kind === 'env-probe'))
        bad(list[i] as SimMessage, `gap ${gap}`);
    }
  }
  return out;
}

describe('the normal 24-hour day', () => {
  const sc = loadScenarioFile(SCENARIO);
  // Winter weekday, summer weekday, a Saturday: heating, warm water (faster decay), weekend demand.
  const days = [Date.UTC(2026, 0, 5), Date.UTC(2026, 6, 15), Date.UTC(2026, 3, 11)];
  for (const start of days)
    for (const seed of [1, 2, 3]) {
      it(`raises nothing under the default rules (${new Date(start).toISOString().slice(0, 10)}, seed ${seed})`, () => {
        const e = new Engine(sc, { seed, startTime: start });
        const msgs = e.advanceTo(start + 24 * HOUR);
        expect(msgs.length).toBeGreaterThan(e.size * 90);
        expect(violations(msgs, (id) => e.device(id).ratedMaxFlow ?? Infinity)).toEqual([]);
      });
    }

  it('the checker itself catches a fault (it can fail)', () => {
    const e = new Engine(sc, { seed: 1, startTime: days[0] as number });
    e.startFault('tank-1', 'dosing-pump-failure');
    e.startFault('wm-flat-101', 'leak');
    const v = violations(e.advanceTo((days[0] as number) + 24 * HOUR), () => Infinity);
    expect(v.some((x) => x.includes('tank-1') && x.includes('free chlorine'))).toBe(true);
    expect(v.some((x) => x.includes('wm-flat-101') && x.includes('zero-flow'))).toBe(true);
  });
});
