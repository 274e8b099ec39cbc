import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../gateway/src/config/load.js';
import type { Gateway } from '../../gateway/src/gateway.js';
import { ADMIN_TOKEN, spawnGateway, startGateway } from '../fixtures/gateway.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { publishAll } from '../fixtures/publisher.js';

/**
 * Hot reload of the config file in the running gateway (HTTP route and SIGHUP): only the rule that
 * changed starts over; an active alarm keeps its id, a running on-delay fires at its original
 * time; a bad file is rejected with its key paths and changes nothing.
 */

const MIN = 60_000;
let mosq: Mosquitto;
const dirs: string[] = [];

beforeAll(async () => {
  mosq = await startMosquitto();
});
afterAll(async () => {
  await mosq?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Three custom rules on env-probes, the default pack off so nothing else raises. */
function rules(cThreshold: number | string) {
  return {
    pack: [],
    custom: [
      {
        id: 'test.a',
        kind: 'threshold',
        kinds: ['env-probe'],
        class: 'key',
        metric: 'temperature_c',
        high: { value: 30, severity: 'warning' },
      },
      {
        id: 'test.b',
        kind: 'threshold',
        kinds: ['env-probe'],
        class: 'key',
        metric: 'humidity_pct',
        high: { value: 70, severity: 'warning', onDelayMs: 10 * MIN },
      },
      {
        id: 'test.c',
        kind: 'threshold',
        kinds: ['env-probe'],
        class: 'key',
        metric: 'door_temp_c',
        high: { value: cThreshold, severity: 'warning' },
      },
    ],
  };
}

interface Alarm {
  id: string;
  device: string;
  rule: string;
  state: string;
  raisedAt: string;
}

async function api(url: string, path: string, init: RequestInit = {}) {
  const res = await fetch(`${url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', ...init.headers },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const thresholdOfC = async (url: string) =>
  ((await api(url, '/api/rules')).body.rules as { id: string; high?: { value: number } }[]).find(
    (r) => r.id === 'test.c',
  )?.high?.value;

const alarmsOf = async (url: string) => (await api(url, '/api/alarms?state=all')).body.alarms as Alarm[];

/** room-1: hot (rule A) and humid (rule B); room-2 at 28 °C on the metric of rule C. */
function reading(device: string, ts: number) {
  return {
    topic: `facility/dc/env-probe/${device}/telemetry`,
    payload: JSON.stringify(
      device === 'room-1'
        ? { ts, temperature_c: 35, humidity_pct: 80 }
        : { ts, temperature_c: 22, humidity_pct: 45, door_temp_c: 28 },
    ),
  };
}

describe('config reload in the running gateway', () => {
  it('POST /api/admin/reload applies a changed rule and keeps the state of the others', async () => {
    const dir = tempDir('fgw-reload-');
    const file = join(dir, 'gateway.yaml');
    const base = {
      dataDir: join(dir, 'data'),
      logLevel: 'warn',
      http: { host: '127.0.0.1', port: 0, adminToken: ADMIN_TOKEN },
      mqtt: { url: mosq.url, clientId: `gw-reload-${Math.random().toString(16).slice(2)}` },
      influx: { enabled: false },
      alarms: { tickMs: 200 },
      devices: [
        { id: 'room-1', site: 'dc', kind: 'env-probe' },
        { id: 'room-2', site: 'dc', kind: 'env-probe' },
      ],
    };
    const write = (extra: Record<string, unknown>) => writeFileSync(file, stringify({ ...base, ...extra }));
    write({ rules: rules(35) });
    const gw: Gateway & { cleanup(): Promise<void> } = await startGateway(loadConfig(file));
    gw.configPath = file;
    const url = gw.httpUrl!;
    try {
      const t0 = Math.floor((Date.now() - 30 * MIN) / MIN) * MIN;
      const minutes = (a: number, b: number) =>
        Array.from({ length: b - a + 1 }, (_, i) => [
          reading('room-1', t0 + (a + i) * MIN),
          reading('room-2', t0 + (a + i) * MIN),
        ]).flat();
      // A raises at once; B's 10-minute on-delay starts at t0; C (35) does not see 28.
      await publishAll(mosq.url, minutes(0, 5), { window: 1 });
      await waitFor(() => gw.pipeline!.counters.accepted === 12, 10_000, 'first readings');
      await waitFor(async () => (await alarmsOf(url)).length === 1, 10_000, 'alarm A');
      const [a] = await alarmsOf(url);
      expect(a).toMatchObject({ device: 'room-1', rule: 'test.a', state: 'active-unacknowledged' });

      // Only rule C changes.
      write({ rules: rules(25) });
      const ok = await api(url, '/api/admin/reload', { method: 'POST', body: '{}' });
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ status: 'applied', applied: ['rules'], restartNeeded: [] });
      expect(await thresholdOfC(url)).toBe(25);

      await publishAll(mosq.url, minutes(6, 12), { window: 1 });
      await waitFor(() => gw.pipeline!.counters.accepted === 26, 10_000, 'readings after the reload');
      await waitFor(async () => (await alarmsOf(url)).length === 3, 10_000, 'alarms B and C');
      const after = await alarmsOf(url);
      const byRule = new Map(after.map((x) => [x.rule, x]));
      // A: the same alarm, still active.
      expect(byRule.get('test.a')).toMatchObject({ id: a!.id, state: 'active-unacknowledged' });
      // B: the on-delay that started before the reload expired at its original time.
      expect(Date.parse(byRule.get('test.b')!.raisedAt)).toBe(t0 + 10 * MIN);
      // C: its new threshold, from the first reading after the reload.
      expect(byRule.get('test.c')).toMatchObject({ device: 'room-2' });
      expect(Date.parse(byRule.get('test.c')!.raisedAt)).toBe(t0 + 6 * MIN);

      // A bad file: 400 with the key path, nothing changes.
      write({ rules: rules('warm') });
      const bad = await api(url, '/api/admin/reload', { method: 'POST', body: '{}' });
      expect(bad.status).toBe(400);
      const err = bad.body.error as { code: string; problems: { path: string }[] };
      expect(err.code).toBe('GW_ERR_CONFIG_INVALID');
      expect(err.problems.map((p) => p.path)).toContain('rules.custom.2.high.value');
      expect(await thresholdOfC(url)).toBe(25);
      expect((await alarmsOf(url)).map((x) => x.id).sort()).toEqual(after.map((x) => x.id).sort());

      // A setting that needs a restart is reported, not applied.
      write({ rules: rules(25), mqtt: { ...base.mqtt, keepaliveSec: 45 } });
      const restart = await api(url, '/api/admin/reload', { method: 'POST', body: '{}' });
      expect(restart.body).toEqual({
        status: 'unchanged',
        applied: [],
        restartNeeded: ['mqtt.keepaliveSec'],
      });
      expect(gw.cfg.mqtt.keepaliveSec).toBe(30);

      // The schema's restart marks decide: alarm grouping is applied, the alarm tick waits for a restart.
      write({
        rules: rules(25),
        mqtt: { ...base.mqtt, keepaliveSec: 45 },
        alarms: { tickMs: 300, grouping: { windowMs: 10 * MIN } },
      });
      const marks = await api(url, '/api/admin/reload', { method: 'POST', body: '{}' });
      expect(marks.body).toEqual({
        status: 'applied',
        applied: ['alarms.grouping'],
        restartNeeded: ['mqtt.keepaliveSec', 'alarms.tickMs'],
      });

      // Admin only.
      const anonymous = await fetch(`${url}/api/admin/reload`, { method: 'POST' });
      expect(anonymous.status).toBe(401);
    } finally {
      await gw.cleanup();
    }
  });

  it('SIGHUP re-reads the config file of a gateway process; a bad file leaves it running', async () => {
    const dir = tempDir('fgw-hup-');
    const rulesFile = join(dir, 'rules.yaml');
    writeFileSync(rulesFile, stringify(rules(35)));
    const gw = await spawnGateway({
      dataDir: join(dir, 'data'),
      logLevel: 'info',
      mqtt: { url: mosq.url, clientId: `gw-hup-${Math.random().toString(16).slice(2)}` },
      influx: { enabled: false },
      alarms: { tickMs: 200 },
      // Absolute, so the test can rewrite it; the gateway resolves it against its config file.
      rulesFile,
    });
    try {
      const t0 = Math.floor((Date.now() - 10 * MIN) / MIN) * MIN;
      await publishAll(mosq.url, [reading('room-2', t0)]);
      await waitFor(
        async () => ((await api(gw.url, '/api/devices')).body.devices as unknown[]).length === 1,
        10_000,
        'first reading',
      );
      expect(await alarmsOf(gw.url)).toEqual([]);

      writeFileSync(rulesFile, stringify(rules(25)));
      gw.proc.kill('SIGHUP');
      await waitFor(() => gw.output().includes('config reloaded'), 10_000, 'reload logged');
      await publishAll(mosq.url, [reading('room-2', t0 + MIN)]);
      await waitFor(async () => (await alarmsOf(gw.url)).length === 1, 10_000, 'alarm C after SIGHUP');
      expect((await alarmsOf(gw.url))[0]).toMatchObject({ device: 'room-2', rule: 'test.c' });

      writeFileSync(rulesFile, stringify(rules('warm')));
      gw.proc.kill('SIGHUP');
      await waitFor(() => gw.output().includes('config reload rejected'), 10_000, 'rejection logged');
      expect(gw.output()).toContain('rules.custom.2.high.value');
      expect(gw.proc.exitCode).toBeNull();
      expect((await api(gw.url, '/api/health')).status).toBe(200);
      expect(await gw.stop()).toBe(0);
    } finally {
      await gw.kill();
    }
  });
});
