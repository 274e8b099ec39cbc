import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { influxSchema, outboxSchema } from '../../gateway/src/config/schema.js';
import type { ComponentState } from '../../gateway/src/core/types.js';
import { InfluxWriter } from '../../gateway/src/sinks/influx/index.js';
import { Outbox } from '../../gateway/src/storage/outbox.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { waitFor } from '../fixtures/ports.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const BASE = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
const TOTAL = 10_000;

function line(i: number): string {
  return i % 2 === 0
    ? `gas_meter,site=site${i % 3},device=dev${i % 50} volume_m3=${(i / 4).toFixed(3)} ${BASE + i}\n`
    : `env_probe,site=site${i % 3},device=dev${i % 50} temperature_c=${(20 + (i % 100) / 10).toFixed(2)} ${BASE + i}\n`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('InfluxDB sink across an InfluxDB outage', () => {
  let server: InfluxDB;
  const dirs: string[] = [];

  beforeAll(async () => {
    server = await startInfluxDB();
  });
  afterAll(async () => {
    await server?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it.each([
    ['stopped', 'stop'],
    ['killed with SIGKILL', 'kill'],
  ] as const)(
    'holds readings while InfluxDB is %s and writes each exactly once after it returns',
    async (_, how) => {
      const db = `outage_${how}`;
      const dir = mkdtempSync(join(tmpdir(), 'fgw-influx-outage-'));
      dirs.push(dir);
      const outbox = new Outbox(outboxSchema.parse({ synchronous: 'normal' }), dir, log);
      await outbox.start();
      const cfg = influxSchema.parse({
        api: 'v1',
        url: server.url,
        db,
        batchLines: 500,
        flushIntervalMs: 50,
        retry: { minMs: 50, maxMs: 400 },
      });
      const writer = new InfluxWriter(cfg, outbox, log);
      await writer.start();
      const states: ComponentState[] = [];
      const watch = setInterval(() => {
        const s = writer.health().state;
        if (states[states.length - 1] !== s) states.push(s);
      }, 10);
      // Appends at a steady pace, 100 lines every 10 ms, as a stream of readings would arrive.
      const feed = async (from: number, to: number): Promise<void> => {
        for (let i = from; i < to; i++) {
          outbox.append(line(i));
          if ((i + 1) % 100 === 0) await sleep(10);
        }
      };
      try {
        const third = Math.floor(TOTAL / 3);
        await feed(0, third);
        await waitFor(() => outbox.stats().pendingLines === 0, 20_000, 'first third written');

        await (how === 'kill' ? server.kill() : server.stop());
        await feed(third, 2 * third);
        await waitFor(() => writer.health().state === 'degraded', 10_000, 'writer degraded');
        const held = outbox.stats().pendingLines;
        expect(held).toBeGreaterThan(0);
        expect(writer.health()).toMatchObject({ state: 'degraded', pendingLines: held });
        expect(String(writer.health().detail)).toMatch(/ECONNREFUSED/);

        await server.restart();
        await feed(2 * third, TOTAL);
        await waitFor(() => outbox.stats().pendingLines === 0, 30_000, 'everything drained');
        await waitFor(() => writer.health().state === 'ok', 5_000, 'writer ok');

        const gas = await server.query('SELECT count(volume_m3) FROM gas_meter', db);
        const env = await server.query('SELECT count(temperature_c) FROM env_probe', db);
        expect(Number(gas[0]!.values[0]![1])).toBe(TOTAL / 2);
        expect(Number(env[0]!.values[0]![1])).toBe(TOTAL / 2);
        const rows = await server.query('SELECT volume_m3 FROM gas_meter', db);
        const times = rows[0]!.values.map((v) => v[0] as number);
        expect(new Set(times).size).toBe(TOTAL / 2);
        expect(Math.min(...times)).toBe(BASE);
        expect(Math.max(...times)).toBe(BASE + TOTAL - 2);

        expect(outbox.stats()).toMatchObject({ pendingLines: 0, parkedBatches: 0 });
        const d = states.indexOf('degraded');
        expect(d).toBeGreaterThanOrEqual(0);
        expect(states.slice(d)).toContain('ok');
      } finally {
        clearInterval(watch);
        await writer.stop();
        await outbox.stop();
      }
    },
  );
});
