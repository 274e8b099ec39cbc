import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../gateway/src/config/schema.js';
import { Deriver, type StateStore, type StateValue } from '../../gateway/src/ingest/derive.js';
import { IngestPipeline, type LineSink } from '../../gateway/src/ingest/pipeline.js';
import { DeviceRegistry } from '../../gateway/src/registry/registry.js';

// The exact line protocol the ingest path hands the outbox, from messages of varying shapes one after
// the other (each line is built in a buffer reused from message to message).

class Lines implements LineSink {
  readonly lines: string[] = [];
  appendBytes(src: Buffer, start: number, end: number): void {
    this.lines.push(src.toString('utf8', start, end));
  }
}

class MemStore implements StateStore {
  readonly rows = new Map<string, string>();
  loadState(): Map<string, string> {
    return new Map();
  }
  putState(key: string, value: StateValue): void {
    this.rows.set(key, String(value));
  }
}

function pipeline(): { p: IngestPipeline; out: Lines } {
  const cfg = configSchema.parse({});
  const registry = new DeviceRegistry([]);
  const out = new Lines();
  const p = new IngestPipeline(
    cfg,
    registry,
    new Deriver(new MemStore(), registry),
    out,
    null,
    pino({ level: 'silent' }),
  );
  return { p, out };
}

const T = 1767225600000;
const msg = (p: IngestPipeline, topic: string, body: unknown, now = T + 1000) =>
  p.handleMessage(topic, Buffer.from(JSON.stringify(body)), now);

describe('ingest lines', () => {
  it('writes the flat form with its fields in order, booleans and numbers as line protocol', () => {
    const { p, out } = pipeline();
    msg(p, 'facility/plant-1/chlorination/tank-1/telemetry', {
      ts: T,
      free_chlorine_mgl: 0.42,
      ph: 7,
      dosing_pump_on: true,
      level_pct: 1e-7,
    });
    expect(out.lines).toEqual([
      `chlorination,device=tank-1,site=plant-1 free_chlorine_mgl=0.42,ph=7,dosing_pump_on=true,level_pct=1e-7 ${T}\n`,
    ]);
  });

  it('writes the nested form, 0/1 for a boolean metric as a boolean, and an extra field', () => {
    const { p, out } = pipeline();
    msg(p, 'facility/hq/env-probe/room-a/telemetry', {
      ts: '2026-01-01T00:00:00Z',
      values: { temperature_c: 22.5, humidity_pct: 50, smoke: 0, rack_fan_rpm: 1200 },
    });
    const dp = out.lines[0]!.match(/dew_point_c=([^ ]+) /)![1];
    expect(Number(dp)).toBeCloseTo(11.55, 1);
    expect(out.lines).toEqual([
      `env_probe,device=room-a,site=hq temperature_c=22.5,humidity_pct=50,smoke=false,rack_fan_rpm=1200,dew_point_c=${dp} ${T}\n`,
    ]);
  });

  it('adds the consumption of a meter from its second reading, and flags a reset', () => {
    const { p, out } = pipeline();
    const t = 'facility/b/water-meter/wm-1/telemetry';
    msg(p, t, { ts: T, volume_m3: 10.5 });
    msg(p, t, { ts: T + 60_000, volume_m3: 10.75 }, T + 61_000);
    msg(p, t, { ts: T + 120_000, volume_m3: 2 }, T + 121_000);
    expect(out.lines).toEqual([
      `water_meter,device=wm-1,site=b volume_m3=10.5 ${T}\n`,
      `water_meter,device=wm-1,site=b volume_m3=10.75,consumption_m3=0.25 ${T + 60_000}\n`,
      `water_meter,device=wm-1,site=b volume_m3=2,consumption_m3=0,index_reset=true ${T + 120_000}\n`,
    ]);
  });

  it('leaves nothing of a rejected message in the next line, however many fields it had', () => {
    const { p, out } = pipeline();
    const t = 'facility/plant-1/chlorination/tank-1/telemetry';
    msg(p, t, { ts: T, ph: 7.2 });
    // Five good fields, then a string: rejected after its pieces were laid out.
    msg(p, t, {
      ts: T + 1,
      ph: 7.1,
      orp_mv: 650,
      level_pct: 50,
      temperature_c: 12,
      turbidity_ntu: 0.2,
      free_chlorine_mgl: 'x',
    });
    msg(p, t, { ts: T + 2, ph: 7.3 });
    expect(out.lines).toEqual([
      `chlorination,device=tank-1,site=plant-1 ph=7.2 ${T}\n`,
      `chlorination,device=tank-1,site=plant-1 ph=7.3 ${T + 2}\n`,
    ]);
  });

  it('writes nothing for a rejected message and carries a reading quality from other sources', () => {
    const { p, out } = pipeline();
    msg(p, 'facility/plant-1/chlorination/tank-1/telemetry', { ts: T, ph: 15 });
    expect(out.lines).toEqual([]);
    p.handleReading(
      {
        site: 'plant-1',
        kind: 'chlorination',
        device: 'tank-1',
        ts: T,
        fields: { ph: 7.1 },
        quality: 'uncertain',
      },
      T + 1000,
    );
    expect(out.lines).toEqual([
      `chlorination,device=tank-1,site=plant-1 ph_bad=7.1,ph_quality="uncertain" ${T}\n`,
    ]);
  });

  it("keeps each value's quality apart: bad ones under <metric>_bad, good ones as they are", () => {
    const { p, out } = pipeline();
    const r = p.handleReading(
      {
        site: 'plant-1',
        kind: 'chlorination',
        device: 'tank-1',
        ts: T,
        // A failed analyser's reading may be impossible: kept, not range-checked, not rejected.
        fields: { free_chlorine_mgl: -1, ph: 7.2 },
        quality: 'bad',
        qualities: { free_chlorine_mgl: 'bad' },
      },
      T + 1000,
    );
    expect(r).toBeNull();
    // A reading whose values are all good, as OPC UA delivers most of them.
    const good = { site: 'plant-1', kind: 'chlorination', device: 'tank-1', ts: T + 1, fields: { ph: 7.3 } };
    expect(p.handleReading(good, T + 1000)).toBeNull();
    expect(out.lines).toEqual([
      `chlorination,device=tank-1,site=plant-1 free_chlorine_mgl_bad=-1,free_chlorine_mgl_quality="bad",ph=7.2 ${T}\n`,
      `chlorination,device=tank-1,site=plant-1 ph=7.3 ${T + 1}\n`,
    ]);
  });

  it("takes a JSON payload's quality, per metric or for the whole message", () => {
    const { p, out } = pipeline();
    const topic = 'facility/plant-1/chlorination/tank-1/telemetry';
    msg(p, topic, { ts: T, free_chlorine_mgl: 0, ph: 7.2, quality: { free_chlorine_mgl: 'bad' } });
    msg(p, topic, { ts: T + 1, values: { ph: 7.3 }, quality: 'uncertain' });
    msg(p, topic, { ts: T + 2, values: { ph: 7.4 }, quality: { ph: 'good' } });
    expect(out.lines).toEqual([
      `chlorination,device=tank-1,site=plant-1 free_chlorine_mgl_bad=0,free_chlorine_mgl_quality="bad",ph=7.2 ${T}\n`,
      `chlorination,device=tank-1,site=plant-1 ph_bad=7.3,ph_quality="uncertain" ${T + 1}\n`,
      `chlorination,device=tank-1,site=plant-1 ph=7.4 ${T + 2}\n`,
    ]);
  });

  it("rejects a quality it cannot use, and extras named like a metric's bad values", () => {
    const { p, out } = pipeline();
    const topic = 'facility/plant-1/chlorination/tank-1/telemetry';
    msg(p, topic, { ts: T, ph: 7.2, quality: { ph: 'broken' } });
    msg(p, topic, { ts: T, ph: 7.2, quality: { orp_mv: 'bad' } });
    msg(p, topic, { ts: T, ph: 7.2, quality: ['bad'] });
    msg(p, topic, { ts: T, ph: 7.2, ph_bad: 1 });
    expect(out.lines).toEqual([]);
    expect(p.counters.rejected.quality_invalid).toBe(3);
    expect(p.counters.rejected.metric_reserved).toBe(1);
  });
});
