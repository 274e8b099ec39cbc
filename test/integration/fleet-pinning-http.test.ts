import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../gateway/src/config/load.js';
import { ADMIN_TOKEN, startGateway } from '../fixtures/gateway.js';

/**
 * Pinning (docs/fleet.md "Pinning") against a running gateway read from a real config file:
 * operators change a threshold, a device and the escalation chain; the integrator then pins them in
 * the file and reloads. The operators' values are skipped (the file's apply again, nothing fatal),
 * the API says what is pinned, and each further change is refused with 409 GW_ERR_PINNED naming
 * the pin, after the role check; values nobody pinned still change.
 */
const ENGINEER = 'engineer-token-0123';
const VIEWER = 'viewer-token-0123';
const PINS = ['rules.overrides.chlorine.free.low', 'devices.estate/tank-1', 'workorders.contacts'];
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;
let file: string;

const base = (dataDir: string, timeZone: string) => ({
  dataDir,
  logLevel: 'warn',
  http: {
    host: '127.0.0.1',
    port: 0,
    adminToken: ADMIN_TOKEN,
    tokens: [
      { name: 'erin', role: 'engineer', token: ENGINEER },
      { name: 'val', role: 'viewer', token: VIEWER },
    ],
  },
  broker: { host: '127.0.0.1', port: 0 },
  influx: { enabled: false },
  devices: ['tank-1', 'tank-2'].map((id) => ({ id, site: 'estate', kind: 'chlorination', name: id })),
  rules: {
    overrides: [{ rule: 'chlorine.free.low', site: 'estate', set: { low: { value: 0.35 } } }],
  },
  workorders: {
    contacts: [{ name: 'File Duty', contact: '+86 10 0000 0000' }],
    // Only the schedules the operators make here.
    maintenance: { schedules: [], timeZone },
  },
});
const write = (pinned: string[], timeZone = 'UTC') =>
  writeFileSync(file, stringify({ ...base(join(dir, 'data'), timeZone), fleet: { pinned } }));

async function call(method: string, path: string, token: string, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${gw.httpUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

type Rule = {
  rule: string;
  def: { low?: { value: number } };
  pin: string | null;
  sources: Record<string, { layer: string; origin: string; pinned?: boolean }>;
};
async function lowRule(device: string): Promise<Rule> {
  const r = await call('GET', `/api/fleet/rules?device=estate/${device}`, VIEWER);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return (r.body.rules as Rule[]).find((x) => x.rule === 'chlorine.free.low')!;
}
const deviceName = async (id: string) =>
  (await call('GET', `/api/devices/${encodeURIComponent(`estate/${id}`)}`, VIEWER)).body.name;
const chainNames = async () =>
  ((await call('GET', '/api/fleet/contacts', VIEWER)).body.chain as { name: string }[]).map((c) => c.name);

function expectPinned(r: { status: number; body: Record<string, unknown> }, pin: string): void {
  expect(r.status, JSON.stringify(r.body)).toBe(409);
  const err = r.body.error as { code: string; message: string };
  expect(err.code).toBe('GW_ERR_PINNED');
  expect(err.message).toContain(`fleet.pinned: "${pin}"`);
}

const lowOverride = (target: string, value: number) => ({
  scope: 'device',
  target,
  rule: 'chlorine.free.low',
  set: { low: { value } },
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fgw-pins-'));
  file = join(dir, 'gateway.yaml');
  write([]);
  gw = await startGateway(loadConfig(file));
  gw.configPath = file;
}, 60_000);
afterAll(async () => {
  await gw?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('pinning values in the config file', () => {
  it('values pinned after operators changed them: the file applies again, nothing fatal', async () => {
    // Before any pin: an operator's threshold, device and chain apply.
    expect(
      (await call('PUT', '/api/fleet/overrides', ENGINEER, lowOverride('estate/tank-1', 0.5))).status,
    ).toBe(200);
    const dev = { site: 'estate', id: 'tank-1', kind: 'chlorination', name: 'School tank' };
    expect((await call('PUT', '/api/fleet/devices', ADMIN_TOKEN, dev)).status).toBe(200);
    const chain = [{ name: 'Li Wei' }, { name: 'Zhang San' }];
    expect((await call('PUT', '/api/fleet/contacts', ADMIN_TOKEN, { contacts: chain })).status).toBe(200);
    expect((await lowRule('tank-1')).def.low!.value).toBe(0.5);
    expect(await deviceName('tank-1')).toBe('School tank');
    expect(await chainNames()).toEqual(['Li Wei', 'Zhang San']);
    expect((await lowRule('tank-1')).pin).toBeNull();

    write(PINS);
    expect(gw.reloadFromFile()).toMatchObject({ ok: true });

    // The operators' values are kept in the store but skipped: the file's apply.
    const low = await lowRule('tank-1');
    expect(low.def.low!.value).toBe(0.35);
    expect(low.pin).toBe('rules.overrides.chlorine.free.low');
    expect(low.sources['low.value']).toEqual({ layer: 'site', origin: 'file', pinned: true });
    expect(await deviceName('tank-1')).toBe('tank-1');
    expect(await chainNames()).toEqual(['File Duty']);
    const contacts = await call('GET', '/api/fleet/contacts', VIEWER);
    expect(contacts.body.pin).toBe('workorders.contacts');
    const fleet = (await call('GET', '/api/fleet/devices', VIEWER)).body.devices as {
      device: { id: string };
      pin: string | null;
    }[];
    expect(fleet.find((d) => d.device.id === 'tank-1')?.pin).toBe('devices.estate/tank-1');
    expect(fleet.find((d) => d.device.id === 'tank-2')?.pin).toBeNull();
    // Still running and healthy; health counts what the pins leave out (override, device, chain).
    expect((await call('GET', '/api/rules?device=estate/tank-2', VIEWER)).status).toBe(200);
    const health = await call('GET', '/api/health', VIEWER);
    expect((health.body.components as Record<string, unknown>).fleet).toMatchObject({
      state: 'ok',
      pinnedSkipped: 3,
    });
  });

  it('a pinned threshold is refused with 409 GW_ERR_PINNED after the role check; others change', async () => {
    expect(
      (await call('PUT', '/api/fleet/overrides', VIEWER, lowOverride('estate/tank-2', 0.6))).status,
    ).toBe(403);
    expectPinned(
      await call('PUT', '/api/fleet/overrides', ENGINEER, lowOverride('estate/tank-2', 0.6)),
      'rules.overrides.chlorine.free.low',
    );
    expectPinned(
      await call('PUT', '/api/fleet/overrides', ENGINEER, {
        scope: 'kind',
        target: 'chlorination',
        rule: 'chlorine.free.low',
        set: { enabled: false },
      }),
      'rules.overrides.chlorine.free.low',
    );
    expect((await lowRule('tank-2')).def.low!.value).toBe(0.35);

    // Removing the operator's stored override is a change too.
    expectPinned(
      await call('DELETE', '/api/fleet/overrides?key=device:estate/tank-1:chlorine.free.low', ENGINEER),
      'rules.overrides.chlorine.free.low',
    );
    // Restoring an old change of the pinned rule is a change too.
    const h = await call('GET', '/api/fleet/history?entity=rule-override', VIEWER);
    const id = (h.body.changes as { id: number }[])[0]!.id;
    expectPinned(
      await call('POST', `/api/fleet/history/${id}/restore`, ENGINEER),
      'rules.overrides.chlorine.free.low',
    );

    // A rule nobody pinned changes as before.
    const high = await call('PUT', '/api/fleet/overrides', ENGINEER, {
      scope: 'device',
      target: 'estate/tank-2',
      rule: 'chlorine.free.high',
      set: { high: { value: 3.5 } },
    });
    expect(high.status, JSON.stringify(high.body)).toBe(200);
  });

  it('a pinned device is refused (edit, retire, move); the device next to it changes', async () => {
    const dev = { site: 'estate', id: 'tank-1', kind: 'chlorination', name: 'Renamed' };
    expect((await call('PUT', '/api/fleet/devices', ENGINEER, dev)).status).toBe(403);
    expectPinned(await call('PUT', '/api/fleet/devices', ADMIN_TOKEN, dev), 'devices.estate/tank-1');
    expectPinned(
      await call('POST', '/api/fleet/devices/estate/tank-1/retire', ADMIN_TOKEN, {}),
      'devices.estate/tank-1',
    );
    expectPinned(
      await call('POST', '/api/fleet/devices/estate/tank-1/move', ADMIN_TOKEN, { site: 'east' }),
      'devices.estate/tank-1',
    );
    expect(await deviceName('tank-1')).toBe('tank-1');

    const other = { site: 'estate', id: 'tank-2', kind: 'chlorination', name: 'Pool tank' };
    expect((await call('PUT', '/api/fleet/devices', ADMIN_TOKEN, other)).status).toBe(200);
    expect(await deviceName('tank-2')).toBe('Pool tank');

    // A CSV row for the pinned device is a bad row; the others are imported.
    const csv = 'site,id,kind\nestate,tank-1,chlorination\nestate,tank-3,chlorination\n';
    const imp = await call('POST', '/api/fleet/devices/import', ADMIN_TOKEN, { csv, dryRun: false });
    expect(imp.body).toMatchObject({ imported: 1 });
    expect(imp.body.problems).toEqual([
      { line: 2, reason: expect.stringContaining('fleet.pinned: "devices.estate/tank-1"') as string },
    ]);
  });

  it('pinned contacts: the chain and the on-call rota are refused for the admin', async () => {
    const chain = { contacts: [{ name: 'Wang Fang' }] };
    expect((await call('PUT', '/api/fleet/contacts', ENGINEER, chain)).status).toBe(403);
    expectPinned(await call('PUT', '/api/fleet/contacts', ADMIN_TOKEN, chain), 'workorders.contacts');
    expect(
      (await call('PUT', '/api/fleet/on-call', ENGINEER, { contact: { name: 'Wang Fang' } })).status,
    ).toBe(403);
    expectPinned(
      await call('PUT', '/api/fleet/on-call', ADMIN_TOKEN, { contact: { name: 'Wang Fang' } }),
      'workorders.contacts',
    );
    expect(await chainNames()).toEqual(['File Duty']);

    // Unpinned again: the operators' chain, kept in the store, applies once more.
    write([]);
    expect(gw.reloadFromFile()).toMatchObject({ ok: true });
    expect(await chainNames()).toEqual(['Li Wei', 'Zhang San']);
    expect((await lowRule('tank-1')).def.low!.value).toBe(0.5);
    expect((await call('PUT', '/api/fleet/contacts', ADMIN_TOKEN, chain)).status).toBe(200);
  });

  it('schedules: a restore is checked as a PUT, invalid stored ones counted, pinned ones refused', async () => {
    const DAY = 86_400_000;
    const anchor = new Date(Math.floor(Date.now() / DAY) * DAY + 2 * DAY).toISOString();
    const sched = (id: string, at: Record<string, number>) => ({
      id,
      title: id,
      kinds: ['chlorination'],
      every: { days: 7 },
      anchor,
      ...at,
    });
    const put = (body: unknown, token = ENGINEER) => call('PUT', '/api/fleet/schedules', token, body);
    // With the file's zone UTC an hour in UTC is fine; edited later to a local hour.
    expect((await put(sched('filter-check', { hourUtc: 6 }))).status).toBe(200);
    expect((await put(sched('filter-check', { hour: 7 }))).status).toBe(200);
    expect((await put(sched('uv-lamp', { hourUtc: 6 }))).status).toBe(200);
    expect((await put(sched('tank-wash', { hour: 9 }))).status).toBe(200);
    const changes = (await call('GET', '/api/fleet/history?entity=schedule', VIEWER)).body.changes as {
      id: number;
      key: string;
    }[];
    const edit = changes.find((c) => c.key === 'filter-check')!.id; // the newest first: the edit
    const wash = changes.find((c) => c.key === 'tank-wash')!.id;

    // The file's zone changes: an hour in UTC is no longer allowed.
    write([], 'Asia/Shanghai');
    expect(gw.reloadFromFile()).toMatchObject({ ok: true });
    const back = await call('POST', `/api/fleet/history/${edit}/restore`, ENGINEER);
    expect(back.status, JSON.stringify(back.body)).toBe(400);
    expect((back.body.error as { message: string }).message).toContain('give its local hour as hour');
    // The one stored before is left out, counted; viewers' reads leave the count as it is.
    const list = (await call('GET', '/api/fleet/schedules', VIEWER)).body.schedules as {
      schedule: { id: string; hour?: number };
      pin: string | null;
    }[];
    expect(list.find((s) => s.schedule.id === 'filter-check')?.schedule.hour).toBe(7);
    const fleetHealth = async () =>
      ((await call('GET', '/api/health', VIEWER)).body.components as Record<string, unknown>).fleet;
    expect(await fleetHealth()).toMatchObject({ schedulesSkipped: 1 });

    // One schedule pinned: its changes, moves, skips and restores are refused; the others change.
    write(['workorders.maintenance.tank-wash'], 'Asia/Shanghai');
    expect(gw.reloadFromFile()).toMatchObject({ ok: true });
    const pinned = (await call('GET', '/api/fleet/schedules', VIEWER)).body.schedules as typeof list;
    expect(pinned.find((s) => s.schedule.id === 'tank-wash')?.pin).toBe('workorders.maintenance.tank-wash');
    expect(pinned.find((s) => s.schedule.id === 'filter-check')?.pin).toBeNull();
    expect((await put(sched('tank-wash', { hour: 10 }), VIEWER)).status).toBe(403);
    const PIN = 'workorders.maintenance.tank-wash';
    expectPinned(await put(sched('tank-wash', { hour: 10 })), PIN);
    expectPinned(await call('POST', '/api/fleet/schedules/tank-wash/retire', ENGINEER, {}), PIN);
    const dueAt = new Date(Date.parse(anchor) + 7 * DAY).toISOString();
    expectPinned(
      await call('POST', '/api/fleet/schedules/tank-wash/move', ENGINEER, { dueAt, to: anchor }),
      PIN,
    );
    expectPinned(
      await call('POST', '/api/fleet/schedules/tank-wash/skip', ENGINEER, { dueAt, reason: 'holiday' }),
      PIN,
    );
    expectPinned(
      await call('DELETE', `/api/fleet/schedules/tank-wash/occurrences?dueAt=${dueAt}`, ENGINEER),
      PIN,
    );
    expectPinned(await call('POST', `/api/fleet/history/${wash}/restore`, ENGINEER), PIN);
    // The operator's tank-wash is kept but skipped: the file has none.
    expect(pinned.some((s) => s.schedule.id === 'tank-wash')).toBe(true);
    expect(await fleetHealth()).toMatchObject({ pinnedSkipped: 1 });
    expect((await put(sched('filter-check', { hour: 8 }))).status).toBe(200);

    // Every schedule pinned.
    write(['workorders.maintenance'], 'Asia/Shanghai');
    expect(gw.reloadFromFile()).toMatchObject({ ok: true });
    expectPinned(await put(sched('filter-check', { hour: 9 })), 'workorders.maintenance');
    write([]);
    expect(gw.reloadFromFile()).toMatchObject({ ok: true });
  });
});
