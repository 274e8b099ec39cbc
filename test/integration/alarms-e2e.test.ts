import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '../../gateway/src/config/schema.js';
import type { Gateway } from '../../gateway/src/gateway.js';
import { Engine, loadScenarioFile, payloadOf, startSimulation } from '../../simulators/index.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { publishAll } from '../fixtures/publisher.js';

/**
 * Rules and alarms in the running gateway, against a real Mosquitto and a real InfluxDB 1.6.7:
 * a simulator fault scenario through the broker raises exactly its alarm, visible over HTTP with
 * roles, on the live stream and as alarm_event rows; the normal day raises none; a restart in the
 * middle of an on-delay keeps the timer.
 */

const SCENARIOS = new URL('../../simulators/scenarios/', import.meta.url).pathname;
const ENGINEER = 'engineer-token-0123';
const VIEWER = 'viewer-token-0123';
const MIN = 60_000;
type Gw = Gateway & { cleanup(): Promise<void> };

let mosq: Mosquitto;
let influx: InfluxDB;

beforeAll(async () => {
  [mosq, influx] = await Promise.all([startMosquitto(), startInfluxDB()]);
});
afterAll(async () => {
  await Promise.all([mosq?.stop(), influx?.close()]);
});

function config(extra: Record<string, unknown>, devices: Engine | null, sites: string[] = []): GatewayConfig {
  return testConfig({
    mqtt: { url: mosq.url, clientId: `gw-alarms-${Math.random().toString(16).slice(2)}` },
    influx: { enabled: false },
    http: {
      tokens: [
        { name: 'eve', role: 'engineer', token: ENGINEER },
        // Hashed at rest: the config holds only the digest.
        { name: 'vic', role: 'viewer', tokenSha256: createHash('sha256').update(VIEWER).digest('hex') },
      ],
    },
    alarms: { tickMs: 200 },
    // Declared as an installer would, with the rated flow and register of each meter.
    devices:
      devices?.devices().map((d) => ({
        id: d.id,
        site: d.site,
        kind: d.kind,
        critical: false,
        ...(d.ratedMaxFlow !== undefined ? { ratedMaxFlow: d.ratedMaxFlow } : {}),
        ...(d.registerMax !== undefined ? { registerMax: d.registerMax } : {}),
      })) ?? [],
    // Simulated sites keep UTC; pin the night-flow window to it rather than the host's zone.
    rules: {
      overrides: sites.map((site) => ({ rule: 'water.flow.night', site, set: { timeZone: 'UTC' } })),
    },
    ...extra,
  });
}

async function api(gw: Gateway, path: string, token: string, init: RequestInit = {}) {
  const res = await fetch(`${gw.httpUrl}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { alarms?: Alarm[] } };
}

interface Alarm {
  id: string;
  device: string;
  rule: string;
  severity: string;
  state: string;
  raisedAt: string;
  clearedAt: string | null;
  acknowledgedBy: string | null;
}

const summary = (alarms: Alarm[]) => alarms.map((a) => `${a.device} ${a.rule} ${a.severity}`).sort();

/** Reads server-sent events from /api/live into a list until aborted. */
function openLive(gw: Gateway, token: string, query = '') {
  const events: { event: string; data: unknown }[] = [];
  const ctl = new AbortController();
  const done = (async () => {
    const res = await fetch(`${gw.httpUrl}/api/live?${query}`, {
      signal: ctl.signal,
      headers: { authorization: `Bearer ${token}` },
    });
    if (res.status !== 200) throw new Error(`live: ${res.status} ${await res.text()}`);
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) return;
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
      }
    }
  })().catch((err: Error) => {
    if (err.name !== 'AbortError') throw err;
  });
  return { events, close: () => (ctl.abort(), done) };
}

describe('alarms in the running gateway', () => {
  it('a fault scenario through Mosquitto raises exactly its alarm; ack by role; live stream; alarm_event in InfluxDB', async () => {
    const start = Math.floor((Date.now() - 2 * 3_600_000) / MIN) * MIN;
    const sim = new Engine(loadScenarioFile(`${SCENARIOS}serverroom-door.yaml`), {
      seed: 1,
      startTime: start,
    });
    const gw: Gw = await startGateway(
      config({ influx: { api: 'v1', url: influx.url, db: 'facility' } }, sim, ['site-1']),
    );
    const live = openLive(gw, VIEWER);
    try {
      await waitFor(() => gw.hub.subscribers === 1, 10_000, 'live client');
      // The door is left open at 20 min for 25 min: one warning after the 10-minute on-delay.
      const msgs = sim
        .advanceTo(start + 60 * MIN)
        .filter((m) => !m.silent)
        .map((m) => ({ topic: m.topic, payload: payloadOf(m) }));
      await publishAll(mosq.url, msgs);
      await waitFor(() => gw.pipeline!.counters.accepted === msgs.length, 30_000, 'all readings in');
      gw.rules!.tick();
      await waitFor(
        async () => (await api(gw, '/api/alarms?state=all', VIEWER)).body.alarms!.some((a) => a.clearedAt),
        10_000,
        'door alarm raised and cleared',
      );
      const all = (await api(gw, '/api/alarms?state=all', VIEWER)).body.alarms!;
      expect(summary(all)).toEqual(['room-1 serverroom.door.open warning']);
      const door = all[0]!;
      expect(door.state).toBe('cleared-unacknowledged');
      // Raised when the on-delay expired: 10 minutes after the first reading with the door open.
      const openedAt = msgs
        .map((m) => JSON.parse(m.payload) as { ts: number; door_open: boolean })
        .find((p, i) => p.door_open && msgs[i]!.topic.includes('/room-1/') && p.ts >= start + 20 * MIN)!.ts;
      expect(Date.parse(door.raisedAt)).toBe(openedAt + 10 * MIN);
      // Still listed as needing attention until acknowledged.
      expect(summary((await api(gw, '/api/alarms?state=active&device=room-1', VIEWER)).body.alarms!)).toEqual(
        ['room-1 serverroom.door.open warning'],
      );

      // Roles: a viewer may look but not acknowledge; an engineer acknowledges under their name.
      const note = 'checked: "door A", wing=east, back\\slash\nnext line';
      const denied = await api(gw, `/api/alarms/${door.id}/ack`, VIEWER, { method: 'POST', body: '{}' });
      expect(denied.status).toBe(403);
      const bad = await api(gw, `/api/alarms/${door.id}/ack`, ENGINEER, {
        method: 'POST',
        body: '{"note":5}',
      });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toContain('body.note');
      const ack = await api(gw, `/api/alarms/${door.id}/ack`, ENGINEER, {
        method: 'POST',
        body: JSON.stringify({ note }),
      });
      expect(ack.status).toBe(200);
      expect(ack.body).toMatchObject({ state: 'cleared', acknowledgedBy: 'eve' });
      expect(
        (await api(gw, `/api/alarms/${door.id}/ack`, ENGINEER, { method: 'POST', body: '{}' })).status,
      ).toBe(409);
      expect((await api(gw, '/api/alarms?state=active', VIEWER)).body.alarms).toEqual([]);
      const one = await api(gw, `/api/alarms/${door.id}`, VIEWER);
      expect((one.body.history as { type: string }[]).map((h) => h.type)).toEqual(['raise', 'clear', 'ack']);

      // The live stream saw the alarm and readings (throttled per device).
      await waitFor(
        () => live.events.filter((e) => e.event === 'alarm').length >= 3,
        10_000,
        'live alarm events',
      );
      const alarmEvents = live.events
        .filter((e) => e.event === 'alarm')
        .map((e) => (e.data as { event: string }).event);
      expect(alarmEvents).toEqual(['raise', 'clear', 'ack']);
      await waitFor(() => live.events.some((e) => e.event === 'reading'), 5000, 'live reading events');
      // Coalesced: at most one event per device per second, though 120 readings arrived at once.
      expect(live.events.filter((e) => e.event === 'reading').length).toBeLessThanOrEqual(2 * 2);

      // Every transition is a row of alarm_event in InfluxDB, with tags and escaped text intact.
      await waitFor(
        async () => {
          const r = await influx.query('SELECT count(alarm_id) FROM alarm_event', 'facility').catch(() => []);
          return Number(r[0]?.values[0]?.[1] ?? 0) === 3;
        },
        30_000,
        'alarm_event rows',
      );
      const rows = await influx.query(
        'SELECT "event", site, device, rule, severity, "state", alarm_id, message, "user" FROM alarm_event ORDER BY time',
        'facility',
      );
      const cols = rows[0]!.columns;
      const get = (row: unknown[], c: string) => row[cols.indexOf(c)];
      expect(rows[0]!.values.map((r) => get(r, 'event'))).toEqual(['raise', 'clear', 'ack']);
      for (const r of rows[0]!.values) {
        expect(get(r, 'site')).toBe('site-1');
        expect(get(r, 'device')).toBe('room-1');
        expect(get(r, 'rule')).toBe('serverroom.door.open');
        expect(get(r, 'severity')).toBe('warning');
        expect(get(r, 'alarm_id')).toBe(door.id);
      }
      expect(rows[0]!.values[0]![0]).toBe(openedAt + 10 * MIN);
      const ackRow = rows[0]!.values[2]!;
      expect(get(ackRow, 'state')).toBe('cleared');
      expect(get(ackRow, 'user')).toBe('eve');
      expect(get(ackRow, 'message')).toBe(note.replace('\n', ' '));

      const health = gw.health();
      expect(health.rules?.state).toBe('ok');
      expect(health.alarms?.state).toBe('ok');
    } finally {
      await live.close();
      await gw.cleanup();
    }
  });

  it('the normal 24-hour day, replayed through the broker at 3600x, raises no alarm', async () => {
    const scenario = `${SCENARIOS}normal-day.yaml`;
    // Simulated time ends now, so every timestamp is a plausible one for the gateway.
    const startTime = Math.floor(Date.now() / MIN) * MIN - 24 * 3_600_000;
    const devices = new Engine(loadScenarioFile(scenario), { seed: 1, startTime });
    const gw: Gw = await startGateway(config({}, devices, ['estate-a', 'office-b']));
    const sim = await startSimulation({
      brokerUrl: mosq.url,
      scenario,
      seed: 1,
      speed: 3600,
      startTime,
      allowFuture: false,
      logger: pino({ level: 'silent' }),
    });
    try {
      await waitFor(
        () => Date.parse(sim.stats().simTime) >= startTime + 24 * 3_600_000 - 2 * MIN,
        60_000,
        'simulated day',
      );
      await sim.stop();
      const sent = sim.stats().mqtt!.completed;
      expect(sent).toBeGreaterThan(6000);
      await waitFor(() => gw.pipeline!.counters.accepted === sent, 20_000, 'every reading in');
      gw.rules!.tick();
      await new Promise((r) => setTimeout(r, 300));
      expect(gw.rules!.engine.stats().devices).toBe(13);
      expect((await api(gw, '/api/alarms?state=all', VIEWER)).body.alarms).toEqual([]);
      const rates = (await api(gw, '/api/reports/read-rate', VIEWER)).body.rates as { rate: number }[];
      expect(rates.length).toBeGreaterThan(0);
      expect(rates.every((r) => r.rate === 1)).toBe(true);
    } finally {
      await sim.stop().catch(() => undefined);
      await gw.cleanup();
    }
  });

  it('a restart in the middle of a 10-minute on-delay keeps the timer', async () => {
    const t0 = Math.floor((Date.now() - 40 * MIN) / MIN) * MIN;
    const cfg = config({ devices: [{ id: 'room-9', site: 'dc', kind: 'env-probe', critical: false }] }, null);
    const reading = (min: number) => ({
      topic: 'facility/dc/env-probe/room-9/telemetry',
      payload: JSON.stringify({
        ts: t0 + min * MIN,
        temperature_c: 22,
        humidity_pct: 45,
        door_open: min >= 1,
        smoke: false,
        water_leak: false,
      }),
    });
    const first: Gateway = await startGateway(cfg);
    const minutes = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => reading(a + i));
    // Door open from minute 1; six minutes of the on-delay pass before the gateway stops.
    await publishAll(mosq.url, minutes(0, 7), { window: 1 });
    await waitFor(() => first.pipeline!.counters.accepted === 8, 10_000, 'first readings');
    first.rules!.tick();
    await first.stop();

    const second: Gw = await startGateway(cfg);
    try {
      await publishAll(mosq.url, minutes(8, 12), { window: 1 });
      await waitFor(() => second.pipeline!.counters.accepted === 5, 10_000, 'readings after the restart');
      second.rules!.tick();
      await waitFor(
        async () => (await api(second, '/api/alarms', VIEWER)).body.alarms!.length > 0,
        10_000,
        'door alarm',
      );
      const alarms = (await api(second, '/api/alarms?state=all', VIEWER)).body.alarms!;
      // Had the delay started over at the restart it could not have expired by minute 12.
      expect(summary(alarms)).toEqual(['room-9 serverroom.door.open warning']);
      expect(Date.parse(alarms[0]!.raisedAt)).toBe(t0 + 11 * MIN);
    } finally {
      await second.cleanup();
    }
  });
});
