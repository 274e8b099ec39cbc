import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../gateway/src/config/load.js';
import type { Gateway } from '../../gateway/src/gateway.js';
import { runGatewayCli, startGateway, testConfig } from '../fixtures/gateway.js';
import { waitFor } from '../fixtures/ports.js';

/** The rules file, token roles and the shelving / rules / read-rate routes of a running gateway. */

const dir = mkdtempSync(join(tmpdir(), 'fgw-rules-cfg-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('rules file', () => {
  it('is read relative to the config and validated with rules.* key paths', () => {
    file(
      'rules-ok.yaml',
      'overrides:\n  - { rule: chlorine.free.low, site: s1, set: { low: { value: 0.4 } } }\n',
    );
    const cfg = loadConfig(file('ok.yaml', 'rulesFile: rules-ok.yaml\n'), {});
    expect(cfg.rules.overrides[0]).toMatchObject({ rule: 'chlorine.free.low', site: 's1' });
    expect(cfg.rules.pack.length).toBeGreaterThan(30);

    file(
      'rules-bad.yaml',
      'overrides:\n  - { rule: chlorine.free.low, site: s1, set: { low: { value: "x" } } }\n',
    );
    let err: unknown;
    try {
      loadConfig(file('bad.yaml', 'rulesFile: rules-bad.yaml\n'), {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.path)).toContain('rules.overrides.0.set.low.value');
    expect(() => loadConfig(file('both.yaml', 'rulesFile: rules-ok.yaml\nrules: {}\n'), {})).toThrow(
      /either rules or rulesFile/,
    );
  });

  it('a bad rules file stops the gateway with exit code 2 naming the key path', async () => {
    const { code, out } = await runGatewayCli(['--config', join(dir, 'bad.yaml'), '--check-config']);
    expect(code).toBe(2);
    expect(out).toContain('rules.overrides.0.set.low.value');
  });
});

describe('alarm routes', () => {
  let gw: Gateway & { cleanup(): Promise<void> };
  const ENG = 'engineer-token-9876';
  const VIEW = 'viewer-token-9876';
  const call = async (path: string, token: string | null, init: RequestInit = {}) => {
    const headers: Record<string, string> = init.body ? { 'content-type': 'application/json' } : {};
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(`${gw.httpUrl}${path}`, { ...init, headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    gw = await startGateway(
      testConfig({
        influx: { enabled: false },
        http: {
          live: { maxBufferedBytes: 16 * 1024, keepAliveMs: 1000 },
          tokens: [
            { name: 'eve', role: 'engineer', token: ENG },
            { name: 'vic', role: 'viewer', token: VIEW },
          ],
        },
        devices: [
          {
            id: 'wm-1',
            site: 's1',
            kind: 'water-meter',
            meterClass: 'commercial',
            critical: false,
            ratedMaxFlow: 2500,
          },
          { id: 'tank-1', site: 's1', kind: 'chlorination', critical: true },
          { id: 'room-1', site: 's1', kind: 'env-probe', critical: false },
          { id: 'room-2', site: 's1', kind: 'env-probe', critical: false },
        ],
        rules: {
          overrides: [
            { rule: 'chlorine.free.low', critical: true, set: { low: { value: 0.5 } } },
            { rule: 'serverroom.temperature', device: 'room-2', set: { high: { value: 29 } } },
          ],
        },
      }),
    );
  });
  afterAll(async () => {
    await gw?.cleanup();
  });

  it('shelves by role, with validation and key paths, and lists and ends shelves', async () => {
    expect((await call('/api/alarms', null)).status).toBe(401);
    const body = JSON.stringify({ site: 's1', durationMin: 30, reason: 'tank cleaning' });
    expect((await call('/api/alarms/shelve', VIEW, { method: 'POST', body })).status).toBe(403);
    const bad = await call('/api/alarms/shelve', ENG, {
      method: 'POST',
      body: '{"reason":"x","untilMs":"soon"}',
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('body.untilMs');
    const made = await call('/api/alarms/shelve', ENG, { method: 'POST', body });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ site: 's1', user: 'eve', reason: 'tank cleaning', endedAt: null });
    const list = await call('/api/alarms/shelves', VIEW);
    expect((list.body.shelves as unknown[]).length).toBe(1);
    const id = made.body.id as string;
    const ended = await call(`/api/alarms/shelves/${id}`, ENG, { method: 'DELETE' });
    expect(ended.status).toBe(200);
    expect(ended.body.endedBy).toBe('eve');
    expect(((await call('/api/alarms/shelves', VIEW)).body.shelves as unknown[]).length).toBe(0);
    expect((await call(`/api/alarms/shelves/${id}`, ENG, { method: 'DELETE' })).status).toBe(404);
    expect((await call('/api/alarms/nope', VIEW)).status).toBe(404);
    expect((await call('/api/alarms?state=some', VIEW)).status).toBe(400);
    expect((await call('/api/incidents', VIEW)).body.incidents).toEqual([]);
  });

  it('shows the effective rules, per device with critical-asset overrides, and read rates', async () => {
    const all = await call('/api/rules', VIEW);
    expect((all.body.rules as { id: string }[]).some((r) => r.id === 'device.offline')).toBe(true);
    const tank = await call('/api/rules?device=s1/tank-1', VIEW);
    expect(tank.body.critical).toBe(true);
    const low = (tank.body.rules as { id: string; low?: { value: number } }[]).find(
      (r) => r.id === 'chlorine.free.low',
    );
    expect(low?.low?.value).toBe(0.5);
    const offline = (tank.body.rules as { id: string; intervals?: number }[]).find(
      (r) => r.id === 'device.offline',
    );
    expect(offline?.intervals).toBe(2);
    expect((await call('/api/rules?device=s1/nope', VIEW)).status).toBe(404);
    expect((await call('/api/rules?device=tank-1', VIEW)).status).toBe(400);
    const rr = await call('/api/reports/read-rate', VIEW);
    // The commercial meter is newly declared: it has not missed a monthly read yet.
    expect(rr.body.rates).toEqual([]);
    expect(gw.health().rules).toMatchObject({ state: 'ok', devices: 4 });
  });

  it("gives a device only its own kind's rules and thresholds, overrides applied", async () => {
    type Th = { rule: string; metric: string; level: string; value: number; severity: string };
    const of = async (key: string) => {
      const r = await call(`/api/rules?device=${key}`, VIEW);
      expect(r.status, key).toBe(200);
      return r.body as { kind: string; rules: Array<{ id: string; kinds: string[] }>; thresholds: Th[] };
    };
    const tank = await of('s1/tank-1');
    expect(tank.kind).toBe('chlorination');
    for (const r of tank.rules)
      expect(
        r.kinds.some((k) => k === 'chlorination' || k === '*'),
        r.id,
      ).toBe(true);
    expect(tank.rules.some((r) => r.id.startsWith('serverroom.'))).toBe(false);
    expect(new Set(tank.thresholds.map((t) => t.metric)).has('temperature_c')).toBe(false);
    // The critical-asset override raises the warning level of this tank.
    expect(tank.thresholds.filter((t) => t.metric === 'free_chlorine_mgl')).toEqual(
      expect.arrayContaining([
        {
          rule: 'chlorine.free.low',
          metric: 'free_chlorine_mgl',
          level: 'low',
          value: 0.5,
          severity: 'warning',
        },
        {
          rule: 'chlorine.free.low',
          metric: 'free_chlorine_mgl',
          level: 'lowLow',
          value: 0.05,
          severity: 'critical',
        },
        {
          rule: 'chlorine.free.high',
          metric: 'free_chlorine_mgl',
          level: 'high',
          value: 2,
          severity: 'warning',
        },
      ]),
    );
    const temps = async (key: string) =>
      (await of(key)).thresholds
        .filter((t) => t.metric === 'temperature_c')
        .map((t) => `${t.level}=${t.value}`)
        .sort();
    expect(await temps('s1/room-1')).toEqual(['high=27', 'highHigh=32', 'low=18', 'lowLow=15']);
    // The device override applies to room-2 only.
    expect(await temps('s1/room-2')).toEqual(['high=29', 'highHigh=32', 'low=18', 'lowLow=15']);
    expect((await of('s1/room-1')).rules.some((r) => r.id.startsWith('chlorine.'))).toBe(false);
    // A rated-flow limit is the device's own rated flow.
    const meter = await of('s1/wm-1');
    expect(meter.thresholds.find((t) => t.rule === 'water.flow.over-rated')).toMatchObject({
      metric: 'flow_lph',
      value: 2500,
      severity: 'critical',
    });
  });

  it('the live stream needs a token (header; never in the URL), announces itself and pings', async () => {
    expect((await fetch(`${gw.httpUrl}/api/live`)).status).toBe(401);
    // A token in the query string is no credential (URLs end up in logs and history).
    expect((await fetch(`${gw.httpUrl}/api/live?token=${VIEW}`)).status).toBe(401);
    const ctl = new AbortController();
    const res = await fetch(`${gw.httpUrl}/api/live`, {
      headers: { authorization: `Bearer ${VIEW}` },
      signal: ctl.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    // A named `ping` at once and then every keepAliveMs: a page sees it (EventSource hides comments).
    while ((text.match(/^event: ping$/gm) ?? []).length < 2) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += new TextDecoder().decode(chunk.value);
    }
    expect(text).toContain(': connected');
    const pings = [...text.matchAll(/^event: ping\ndata: (.*)$/gm)].map(
      (m) => JSON.parse(m[1]!) as { ts: string; everyMs: number },
    );
    expect(pings).toHaveLength(2);
    for (const p of pings) {
      expect(Date.parse(p.ts)).toBeGreaterThan(Date.now() - 60_000);
      expect(p.everyMs).toBe(1000);
    }
    ctl.abort();
    await waitFor(() => gw.hub.subscribers === 0, 5000, 'client gone after disconnect');
  });

  it('drops a client that does not read instead of buffering for it', async () => {
    const url = new URL(gw.httpUrl!);
    const sock = connect(Number(url.port), url.hostname);
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(`GET /api/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${VIEW}\r\n\r\n`);
    sock.pause(); // never reads: the kernel buffers fill, then the gateway's own bound
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    await waitFor(() => gw.hub.subscribers === 1, 5000, 'slow client subscribed');
    const pad = 'x'.repeat(4000);
    for (let i = 0; i < 400 && gw.hub.subscribers > 0; i++) {
      for (let j = 0; j < 50; j++) gw.hub.publish('alarm', { pad });
      await new Promise((r) => setImmediate(r));
    }
    expect(gw.hub.subscribers).toBe(0);
    sock.resume();
    await closed;
  });
});
