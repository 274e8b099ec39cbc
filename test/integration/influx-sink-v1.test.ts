import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { influxSchema, outboxSchema, type InfluxConfig } from '../../gateway/src/config/schema.js';
import { InfluxWriter } from '../../gateway/src/sinks/influx/index.js';
import { Outbox } from '../../gateway/src/storage/outbox.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { freePort, waitFor } from '../fixtures/ports.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
// An hour ago, on a whole second, so every timestamp is well inside the default retention.
const BASE = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;

/** Line i of a run: gas meters and environment probes, float and boolean fields, ms timestamps. */
function line(i: number): string {
  const site = `site${i % 3}`;
  const device = `dev${i % 50}`;
  const ts = BASE + i;
  return i % 2 === 0
    ? `gas_meter,site=${site},device=${device} volume_m3=${(i / 4).toFixed(3)},valve_open=${i % 4 === 0} ${ts}\n`
    : `env_probe,site=${site},device=${device} temperature_c=${(20 + (i % 100) / 10).toFixed(2)},door_open=${i % 3 === 0} ${ts}\n`;
}

interface Rig {
  outbox: Outbox;
  writer: InfluxWriter;
  stop(): Promise<void>;
}

async function rig(dir: string, influx: Partial<InfluxConfig>, registry?: Registry): Promise<Rig> {
  const outbox = new Outbox(outboxSchema.parse({ synchronous: 'normal' }), dir, log);
  await outbox.start();
  const cfg = influxSchema.parse({
    api: 'v1',
    flushIntervalMs: 50,
    batchLines: 1000,
    retry: { minMs: 50, maxMs: 500 },
    ...influx,
  });
  const writer = new InfluxWriter(cfg, outbox, log, registry);
  await writer.start();
  return {
    outbox,
    writer,
    async stop() {
      await writer.stop();
      await outbox.stop();
    },
  };
}

function appendRange(outbox: Outbox, from: number, to: number, chunk = 250): void {
  for (let i = from; i < to; i++) {
    outbox.append(line(i));
    if ((i + 1) % chunk === 0) outbox.commit();
  }
  outbox.commit();
}

async function count(server: InfluxDB, db: string, q: string): Promise<number> {
  const series = await server.query(q, db).catch(() => []);
  return Number(series[0]?.values[0]?.[1] ?? 0);
}

describe('InfluxDB sink, v1 API, against InfluxDB 1.6.7', () => {
  let server: InfluxDB;
  const dirs: string[] = [];
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'fgw-influx-v1-'));
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    server = await startInfluxDB();
  });
  afterAll(async () => {
    await server?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('writes 10,000 lines exactly once with their types and timestamps, creating the database', async () => {
    const registry = new Registry();
    const r = await rig(tmp(), { url: server.url, db: 'ten_k' }, registry);
    try {
      appendRange(r.outbox, 0, 10_000);
      await waitFor(() => r.outbox.stats().pendingLines === 0, 60_000, 'outbox drained');
      expect(await count(server, 'ten_k', 'SELECT count(volume_m3) FROM gas_meter')).toBe(5000);
      expect(await count(server, 'ten_k', 'SELECT count(valve_open) FROM gas_meter')).toBe(5000);
      expect(await count(server, 'ten_k', 'SELECT count(temperature_c) FROM env_probe')).toBe(5000);
      expect(await count(server, 'ten_k', 'SELECT count(door_open) FROM env_probe')).toBe(5000);

      const types = await server.query('SHOW FIELD KEYS', 'ten_k');
      const typeOf = Object.fromEntries(
        types.flatMap((s) => s.values.map((v) => [`${s.name}.${v[0]}`, v[1]])),
      );
      expect(typeOf).toEqual({
        'gas_meter.volume_m3': 'float',
        'gas_meter.valve_open': 'boolean',
        'env_probe.temperature_c': 'float',
        'env_probe.door_open': 'boolean',
      });

      // Every point, value, tag and timestamp as appended.
      const rows = await server.query('SELECT volume_m3, valve_open, site, device FROM gas_meter', 'ten_k');
      const got = rows[0]!.values.map((v) => v.join('|')).sort();
      const want: string[] = [];
      for (let i = 0; i < 10_000; i += 2) {
        want.push([BASE + i, i / 4, i % 4 === 0, `site${i % 3}`, `dev${i % 50}`].join('|'));
      }
      expect(got).toEqual(want.sort());

      expect(r.writer.health()).toMatchObject({ state: 'ok', linesWritten: 10_000, pendingLines: 0 });
      const text = await registry.metrics();
      expect(text).toMatch(/gateway_influx_lines_written_total 10000/);
      expect(text).toMatch(/gateway_influx_requests_total\{outcome="ok"\} \d+/);
      expect(text).toMatch(/gateway_influx_pending_lines 0/);
    } finally {
      await r.stop();
    }
  });

  it('drains what a stopped writer left in the outbox after a restart', async () => {
    const dir = tmp();
    await server.createDb('restart');
    // First life: InfluxDB is unreachable, so everything stays in the outbox.
    const dead = `http://127.0.0.1:${await freePort()}`;
    const first = await rig(dir, { url: dead, db: 'restart' });
    appendRange(first.outbox, 0, 3000);
    await waitFor(() => first.writer.health().state === 'degraded', 10_000, 'writer retrying');
    expect(first.outbox.stats().pendingLines).toBe(3000);
    await first.stop();

    const second = await rig(dir, { url: server.url, db: 'restart' });
    try {
      await waitFor(() => second.outbox.stats().pendingLines === 0, 30_000, 'outbox drained after restart');
      expect(await count(server, 'restart', 'SELECT count(volume_m3) FROM gas_meter')).toBe(1500);
      expect(await count(server, 'restart', 'SELECT count(temperature_c) FROM env_probe')).toBe(1500);
    } finally {
      await second.stop();
    }
  });

  it('parks a batch with a field type conflict and keeps writing later batches', async () => {
    const r = await rig(tmp(), { url: server.url, db: 'conflict' });
    try {
      const ts = BASE + 50_000;
      r.outbox.append(`pump,site=s1,device=p1 running=1.5 ${ts}\n`);
      r.outbox.commit();
      await waitFor(() => r.outbox.stats().pendingLines === 0, 10_000, 'first batch');
      r.outbox.append(`pump,site=s1,device=p1 running=true ${ts + 1}\n`);
      r.outbox.commit();
      await waitFor(() => r.outbox.stats().parkedBatches === 1, 10_000, 'conflict parked');
      r.outbox.append(`pump,site=s1,device=p1 running=2.5 ${ts + 2}\n`);
      r.outbox.commit();
      await waitFor(() => r.outbox.stats().pendingLines === 0, 10_000, 'last batch');

      const parked = r.outbox.listParked();
      expect(parked).toHaveLength(1);
      expect(parked[0]!.reason).toMatch(/^400 partial write: field type conflict/);
      const rows = await server.query('SELECT running FROM pump', 'conflict');
      expect(rows[0]!.values).toEqual([
        [ts, 1.5],
        [ts + 2, 2.5],
      ]);
      expect(r.writer.health()).toMatchObject({ state: 'ok', parkedBatches: 1 });
    } finally {
      await r.stop();
    }
  });

  it('sends a batch the server finds too large (413) in halves', async () => {
    const small = await startInfluxDB({ maxBodySize: 20_000 });
    // gzip off: InfluxDB applies max-body-size to the compressed body.
    const r = await rig(tmp(), { url: small.url, db: 'split', gzip: false, batchLines: 2000 });
    try {
      appendRange(r.outbox, 0, 2000, 2000);
      await waitFor(() => r.outbox.stats().pendingLines === 0, 30_000, 'outbox drained');
      expect(await count(small, 'split', 'SELECT count(volume_m3) FROM gas_meter')).toBe(1000);
      expect(await count(small, 'split', 'SELECT count(temperature_c) FROM env_probe')).toBe(1000);
      expect(r.outbox.stats().parkedBatches).toBe(0);
    } finally {
      await r.stop();
      await small.close();
    }
  });
});
