import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { influxSchema, outboxSchema } from '../../gateway/src/config/schema.js';
import { InfluxWriter } from '../../gateway/src/sinks/influx/index.js';
import { Outbox } from '../../gateway/src/storage/outbox.js';
import { waitFor } from '../fixtures/ports.js';
import { startVictoria, type ExportedSeries, type Victoria } from '../fixtures/victoria.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const BASE = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;

function line(i: number): string {
  const site = `site${i % 3}`;
  const device = `dev${i % 50}`;
  const ts = BASE + i;
  return i % 2 === 0
    ? `gas_meter,site=${site},device=${device} volume_m3=${(i / 4).toFixed(3)},valve_open=${i % 4 === 0} ${ts}\n`
    : `env_probe,site=${site},device=${device} temperature_c=${(20 + (i % 100) / 10).toFixed(2)},door_open=${i % 3 === 0} ${ts}\n`;
}

/** "metric|site|device|ts|value" for every sample, sorted. */
function samples(series: ExportedSeries[]): string[] {
  const out: string[] = [];
  for (const s of series) {
    s.timestamps.forEach((ts, k) => {
      out.push([s.metric.__name__, s.metric.site, s.metric.device, ts, s.values[k]].join('|'));
    });
  }
  return out.sort();
}

describe('InfluxDB sink, v2 API through the official client, against VictoriaMetrics', () => {
  let vm: Victoria;
  let dir: string;

  beforeAll(async () => {
    vm = await startVictoria();
    dir = mkdtempSync(join(tmpdir(), 'fgw-influx-v2-'));
  });
  afterAll(async () => {
    await vm?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes 10,000 lines (gzip on) exactly once with their values and timestamps', async () => {
    const outbox = new Outbox(outboxSchema.parse({ synchronous: 'normal' }), dir, log);
    await outbox.start();
    const cfg = influxSchema.parse({
      api: 'v2',
      url: vm.url,
      token: 'not-checked-by-victoria',
      org: 'facility',
      bucket: 'facility',
      gzip: true,
      batchLines: 1000,
      flushIntervalMs: 50,
      retry: { minMs: 50, maxMs: 500 },
    });
    const writer = new InfluxWriter(cfg, outbox, log);
    await writer.start();
    try {
      for (let i = 0; i < 10_000; i++) {
        outbox.append(line(i));
        if ((i + 1) % 250 === 0) outbox.commit();
      }
      outbox.commit();
      await waitFor(() => outbox.stats().pendingLines === 0, 60_000, 'outbox drained');
      expect(writer.health()).toMatchObject({ state: 'ok', linesWritten: 10_000 });

      const want: string[] = [];
      for (let i = 0; i < 10_000; i++) {
        const site = `site${i % 3}`;
        const device = `dev${i % 50}`;
        if (i % 2 === 0) {
          want.push(['gas_meter_volume_m3', site, device, BASE + i, i / 4].join('|'));
          want.push(['gas_meter_valve_open', site, device, BASE + i, i % 4 === 0 ? 1 : 0].join('|'));
        } else {
          want.push(['env_probe_temperature_c', site, device, BASE + i, 20 + (i % 100) / 10].join('|'));
          want.push(['env_probe_door_open', site, device, BASE + i, i % 3 === 0 ? 1 : 0].join('|'));
        }
      }
      want.sort();
      // VictoriaMetrics makes fresh data searchable shortly after a flush; poll until it all shows.
      let got: string[] = [];
      await waitFor(
        async () => {
          got = samples(await vm.export('{__name__=~"gas_meter_.*|env_probe_.*"}'));
          return got.length >= want.length;
        },
        30_000,
        'all samples exported',
      );
      expect(got).toEqual(want);
    } finally {
      await writer.stop();
      await outbox.stop();
    }
  });
});
