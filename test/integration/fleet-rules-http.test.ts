import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { waitFor } from '../fixtures/ports.js';
import { publishAll } from '../fixtures/publisher.js';

/**
 * Rule overrides from the API against a running gateway (embedded broker, shared.db): a chlorine
 * limit raised for one tank raises its alarm for a value between the old and the new limit while
 * the tank next to it stays quiet; where each value comes from; the history with who changed
 * what; restore; the change survives a restart; the effective configuration as YAML.
 */
const ENGINEER = 'engineer-token-0123';
const VIEWER = 'viewer-token-0123';
let gw: Awaited<ReturnType<typeof startGateway>>;
let cfg: ReturnType<typeof testConfig>;

const devices = ['tank-1', 'tank-2'].map((id) => ({
  id,
  site: 'estate',
  kind: 'chlorination',
  critical: false,
}));

async function call(method: string, path: string, token: string | null, body?: unknown) {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${gw.httpUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = { text };
  }
  return { status: res.status, body: json, text };
}

let lastTs = Date.now();
/** Publishes one reading and waits until the gateway has taken it (so its rules have run). */
async function publish(device: string, value: number): Promise<void> {
  const ts = ++lastTs;
  await publishAll(gw.mqttUrl, [
    {
      topic: `facility/estate/chlorination/${device}/telemetry`,
      payload: JSON.stringify({ ts, free_chlorine_mgl: value }),
    },
  ]);
  await waitFor(
    async () => {
      const r = await call('GET', `/api/devices/${encodeURIComponent(`estate/${device}`)}`, VIEWER);
      const l = (r.body.latest as Record<string, { ts: number }> | undefined)?.free_chlorine_mgl;
      return l?.ts === ts;
    },
    10_000,
    `the reading of ${device}`,
  );
}

type Alarm = { device: string; rule: string; state: string };
async function activeLow(): Promise<string[]> {
  const r = await call('GET', '/api/alarms?state=active', VIEWER);
  return (r.body.alarms as Alarm[])
    .filter((a) => a.rule === 'chlorine.free.low' && a.state.startsWith('active-'))
    .map((a) => a.device);
}

async function lowLimit(device: string): Promise<number | undefined> {
  const r = await call('GET', `/api/rules?device=estate/${device}`, VIEWER);
  const th = r.body.thresholds as { rule: string; level: string; value: number }[];
  return th.find((t) => t.rule === 'chlorine.free.low' && t.level === 'low')?.value;
}

beforeAll(async () => {
  cfg = testConfig({
    influx: { enabled: false },
    devices,
    http: {
      tokens: [
        { name: 'erin', role: 'engineer', token: ENGINEER },
        { name: 'val', role: 'viewer', token: VIEWER },
      ],
    },
  });
  gw = await startGateway(cfg);
}, 60_000);
afterAll(async () => {
  await gw?.cleanup();
});

describe('rule overrides at runtime', () => {
  it('a raised limit for one tank alarms between the old and new limit; the next tank stays quiet', async () => {
    await publish('tank-1', 0.4);
    await publish('tank-2', 0.4);
    expect(await activeLow()).toEqual([]);
    expect(await lowLimit('tank-1')).toBe(0.3);

    // A viewer may read but not change.
    const body = {
      scope: 'device',
      target: 'estate/tank-1',
      rule: 'chlorine.free.low',
      set: { low: { value: 0.5 } },
    };
    expect((await call('PUT', '/api/fleet/overrides', VIEWER, body)).status).toBe(403);
    const put = await call('PUT', '/api/fleet/overrides', ENGINEER, {
      ...body,
      note: 'tank 1 feeds the school',
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.change).toMatchObject({ actor: 'erin', before: null, entity: 'rule-override' });

    // The chart's limits and the effective rule change at once, with their source.
    expect(await lowLimit('tank-1')).toBe(0.5);
    expect(await lowLimit('tank-2')).toBe(0.3);
    const eff = await call('GET', '/api/fleet/rules?device=estate/tank-1', VIEWER);
    const low = (eff.body.rules as { rule: string; def: { low: { value: number } }; sources: object }[]).find(
      (r) => r.rule === 'chlorine.free.low',
    )!;
    expect(low.def.low.value).toBe(0.5);
    expect(low.sources).toEqual({ 'low.value': { layer: 'device', origin: 'database' } });

    await publish('tank-1', 0.4);
    await publish('tank-2', 0.4);
    await waitFor(async () => (await activeLow()).includes('tank-1'), 10_000, 'the alarm on tank-1');
    // tank-2's reading has been handled, so its verdict is in: no alarm.
    expect(await activeLow()).toEqual(['tank-1']);
  });

  it('refuses an override the config schema refuses, naming the key path, and changes nothing', async () => {
    const bad = await call('PUT', '/api/fleet/overrides', ENGINEER, {
      scope: 'site',
      target: 'estate',
      rule: 'chlorine.free.low',
      set: { low: { value: 'high' } },
    });
    expect(bad.status).toBe(400);
    expect(String((bad.body.error as { message: string }).message)).toContain(
      'site:estate:chlorine.free.low.set.low.value',
    );
    const unknown = await call('PUT', '/api/fleet/overrides', ENGINEER, {
      scope: 'kind',
      target: 'chlorination',
      rule: 'no.such.rule',
      set: { enabled: false },
    });
    expect(unknown.status).toBe(400);
    expect(String((unknown.body.error as { message: string }).message)).toContain(
      'unknown rule no.such.rule',
    );
    expect((await call('GET', '/api/fleet/overrides', VIEWER)).body.overrides).toHaveLength(1);
  });

  it('a kind override is beaten by a site override, which is beaten by a device override', async () => {
    const set = (scope: string, target: string, value: number) =>
      call('PUT', '/api/fleet/overrides', ENGINEER, {
        scope,
        target,
        rule: 'chlorine.free.low',
        set: { low: { value, hysteresis: 0.01 } },
      });
    expect((await set('kind', 'chlorination', 0.35)).status).toBe(200);
    expect(await lowLimit('tank-2')).toBe(0.35);
    expect((await set('site', 'estate', 0.32)).status).toBe(200);
    expect(await lowLimit('tank-2')).toBe(0.32);
    expect(await lowLimit('tank-1')).toBe(0.5);
    const eff = await call('GET', '/api/fleet/rules?device=estate/tank-2', VIEWER);
    const low = (eff.body.rules as { rule: string; sources: Record<string, { layer: string }> }[]).find(
      (r) => r.rule === 'chlorine.free.low',
    )!;
    expect(low.sources['low.value']?.layer).toBe('site');
    expect(low.sources['low.hysteresis']?.layer).toBe('site');
    for (const key of ['site:estate:chlorine.free.low', 'kind:chlorination:chlorine.free.low'])
      expect(
        (await call('DELETE', `/api/fleet/overrides?key=${encodeURIComponent(key)}`, ENGINEER)).status,
      ).toBe(200);
    expect(await lowLimit('tank-2')).toBe(0.3);
  });

  it('the history says who changed what; restore puts the old limit back and the alarm clears', async () => {
    const h = await call('GET', '/api/fleet/history?key=device:estate/tank-1:chlorine.free.low', VIEWER);
    const changes = h.body.changes as {
      id: number;
      actor: string;
      before: unknown;
      after: unknown;
      note: string;
    }[];
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ actor: 'erin', before: null, note: 'tank 1 feeds the school' });
    // The limit of 0.5 still holds for tank-1: alarming again on a value between the two limits.
    await publish('tank-1', 0.4);
    await waitFor(async () => (await activeLow()).includes('tank-1'), 10_000, 'the alarm on tank-1');
    const r = await call('POST', `/api/fleet/history/${changes[0]!.id}/restore`, ENGINEER);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.change).toMatchObject({ after: null, note: `restore of change ${changes[0]!.id}` });
    expect(await lowLimit('tank-1')).toBe(0.3);
    await publish('tank-1', 0.4);
    await waitFor(async () => (await activeLow()).length === 0, 10_000, 'the alarm to clear');
    expect((await call('POST', '/api/fleet/history/999999/restore', ENGINEER)).status).toBe(404);
  });

  it('a retired device has its alarms cleared and no rule state left; restored, it is back', async () => {
    await publish('tank-2', 0.02);
    const active = async () =>
      (
        (await call('GET', '/api/alarms?state=all&site=estate&device=tank-2', VIEWER)).body.alarms as Alarm[]
      ).filter((a) => a.state.startsWith('active-'));
    await waitFor(async () => (await active()).length > 0, 10_000, 'an alarm on tank-2');
    const before = gw.rules!.engine.deviceCount();
    const r = await call('POST', '/api/fleet/devices/estate/tank-2/retire', ADMIN_TOKEN, {
      note: 'tank drained',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    await waitFor(
      async () => (await active()).length === 0,
      10_000,
      'the alarms of the retired tank to clear',
    );
    expect(gw.rules!.engine.deviceCount()).toBe(before - 1);
    expect((await call('GET', `/api/devices/${encodeURIComponent('estate/tank-2')}`, VIEWER)).status).toBe(
      404,
    );
    const id = (r.body.change as { id: number }).id;
    expect((await call('POST', `/api/fleet/history/${id}/restore`, ADMIN_TOKEN)).status).toBe(200);
    expect((await call('GET', `/api/devices/${encodeURIComponent('estate/tank-2')}`, VIEWER)).status).toBe(
      200,
    );
    expect(gw.rules!.engine.deviceCount()).toBe(before);
  });

  it('exports the effective configuration as YAML without secrets (admin only)', async () => {
    await call('PUT', '/api/fleet/overrides', ENGINEER, {
      scope: 'device',
      target: 'estate/tank-2',
      rule: 'chlorine.free.high',
      set: { high: { value: 1.5 } },
    });
    expect((await call('GET', '/api/config/export', ENGINEER)).status).toBe(403);
    const res = await call('GET', '/api/config/export', ADMIN_TOKEN);
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(ADMIN_TOKEN);
    expect(res.text).not.toContain(ENGINEER);
    const y = parse(res.text) as { rules: { overrides: unknown[] }; devices: unknown[] };
    expect(y.rules.overrides).toContainEqual({
      rule: 'chlorine.free.high',
      site: 'estate',
      device: 'tank-2',
      set: { high: { value: 1.5 } },
    });
    expect(y.devices).toHaveLength(2);
  });

  it('operators’ changes survive a restart', async () => {
    await gw.stop();
    const { Gateway } = await import('../../gateway/src/gateway.js');
    const { pino } = await import('pino');
    const again = new Gateway(cfg, pino({ level: 'warn' }));
    await again.start();
    try {
      expect(again.cfg.rules.overrides).toContainEqual({
        rule: 'chlorine.free.high',
        site: 'estate',
        device: 'tank-2',
        set: { high: { value: 1.5 } },
      });
      expect(again.rules!.config.overrides).toHaveLength(1);
    } finally {
      await again.stop();
    }
  });
});
