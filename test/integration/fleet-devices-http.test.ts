import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { waitFor } from '../fixtures/ports.js';
import { publishAll } from '../fixtures/publisher.js';

/**
 * Devices from the API against a running gateway with a real InfluxDB 1.x: a CSV of 500 water
 * meters with 3 bad rows (dry run lists exactly those, applying imports the other 497, which the
 * registry shows and whose readings land in InfluxDB tagged with their site and id), then edit,
 * move, retire and adopt, each live; devices are the admin's.
 */
const ENGINEER = 'engineer-token-0123';
let influx: InfluxDB;
let gw: Awaited<ReturnType<typeof startGateway>>;

async function call(method: string, path: string, token: string | null, body?: unknown) {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${gw.httpUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

type Device = {
  key: string;
  name: string | null;
  discovered: boolean;
  critical: boolean;
  ratedMaxFlow: number | null;
};
const devices = async () => (await call('GET', '/api/devices', ADMIN_TOKEN)).body.devices as Device[];

/** 500 rows; lines 42, 250 and 481 (the header is line 1) are bad, each for its own reason. */
function meterCsv(): string {
  const lines = ['site,id,kind,name,location,critical,ratedMaxFlow,meterClass'];
  for (let i = 1; i <= 500; i++) {
    const line = i + 1;
    const id = `wm-${String(i).padStart(4, '0')}`;
    const site = i % 2 ? 'north' : 'south';
    if (line === 42)
      lines.push(`${site},${id},toaster,Meter ${i},"Block ${i}, flat 1",false,2500,residential`);
    else if (line === 250) lines.push(`${site},wm bad,water-meter,Meter ${i},,false,2500,residential`);
    else if (line === 481) lines.push(`${site},${id},water-meter,Meter ${i},,false,-5,residential`);
    else
      lines.push(
        `${site},${id},water-meter,Meter ${i},"Block ${i}, flat 1",${i % 50 === 0},2500,residential`,
      );
  }
  return lines.join('\n') + '\n';
}

beforeAll(async () => {
  influx = await startInfluxDB();
  await influx.createDb('fleet');
  gw = await startGateway(
    testConfig({
      influx: { api: 'v1', url: influx.url, db: 'fleet', gzip: false },
      http: { tokens: [{ name: 'erin', role: 'engineer', token: ENGINEER }] },
    }),
  );
}, 60_000);
afterAll(async () => {
  await gw?.cleanup();
  await influx?.close();
});

describe('devices at runtime', () => {
  it('CSV import: the dry run lists exactly the 3 bad rows, applying imports 497 live', async () => {
    const csv = meterCsv();
    expect((await call('POST', '/api/fleet/devices/import', ENGINEER, { csv })).status).toBe(403);
    const dry = await call('POST', '/api/fleet/devices/import', ADMIN_TOKEN, { csv, dryRun: true });
    expect(dry.status, JSON.stringify(dry.body)).toBe(200);
    const problems = dry.body.problems as { line: number; reason: string }[];
    expect(problems.map((p) => p.line)).toEqual([42, 250, 481]);
    expect(problems[0]!.reason).toBe('kind: unknown kind "toaster"');
    expect(problems[1]!.reason).toContain('id: must match');
    expect(problems[2]!.reason).toContain('ratedMaxFlow');
    expect(dry.body).toMatchObject({ rows: 500, valid: 497, imported: 0 });
    expect(await devices()).toHaveLength(0);

    const res = await call('POST', '/api/fleet/devices/import', ADMIN_TOKEN, { csv, dryRun: false });
    expect(res.body).toMatchObject({ rows: 500, valid: 497, imported: 497 });
    const list = await devices();
    expect(list).toHaveLength(497);
    expect(list.find((d) => d.key === 'north/wm-0001')).toMatchObject({
      name: 'Meter 1',
      discovered: false,
      ratedMaxFlow: 2500,
    });
    expect(list.find((d) => d.key === 'south/wm-0050')?.critical).toBe(true);
    expect(list.some((d) => d.key.endsWith('/wm-0041'))).toBe(false);
    const history = await call('GET', '/api/fleet/history?entity=device&limit=1000', ADMIN_TOKEN);
    expect((history.body.changes as { actor: string }[]).every((c) => c.actor === 'admin')).toBe(true);
    expect(history.body.changes).toHaveLength(497);
  });

  it('readings of imported meters reach InfluxDB tagged with their site and id', async () => {
    const ts = Date.now();
    await publishAll(gw.mqttUrl, [
      {
        topic: 'facility/north/water-meter/wm-0001/telemetry',
        payload: JSON.stringify({ ts, volume_m3: 12.5 }),
      },
      {
        topic: 'facility/south/water-meter/wm-0500/telemetry',
        payload: JSON.stringify({ ts, volume_m3: 3.25 }),
      },
    ]);
    const series = await waitFor(
      async () => {
        const s = await influx.query('SELECT volume_m3 FROM water_meter GROUP BY site, device', 'fleet');
        return s.length === 2 ? s : undefined;
      },
      20_000,
      'two series in InfluxDB',
    );
    expect(series!.map((s) => s.tags).sort((a, b) => a!.device!.localeCompare(b!.device!))).toEqual([
      { device: 'wm-0001', site: 'north' },
      { device: 'wm-0500', site: 'south' },
    ]);
    // Declared, so they are not counted as discovered.
    const list = await devices();
    expect(list.filter((d) => d.discovered)).toEqual([]);
  });

  it('edit, move and retire apply live; retired devices are kept; restore brings one back', async () => {
    const edit = await call('PUT', '/api/fleet/devices', ADMIN_TOKEN, {
      site: 'north',
      id: 'wm-0001',
      kind: 'water-meter',
      name: 'School meter',
      critical: true,
      ratedMaxFlow: 4000,
    });
    expect(edit.status, JSON.stringify(edit.body)).toBe(200);
    expect((await devices()).find((d) => d.key === 'north/wm-0001')).toMatchObject({
      name: 'School meter',
      critical: true,
      ratedMaxFlow: 4000,
    });
    const bad = await call('PUT', '/api/fleet/devices', ADMIN_TOKEN, {
      site: 'north',
      id: 'x',
      kind: 'toaster',
    });
    expect(bad.status).toBe(400);

    const move = await call('POST', '/api/fleet/devices/north/wm-0003/move', ADMIN_TOKEN, { site: 'east' });
    expect(move.status, JSON.stringify(move.body)).toBe(200);
    const keys = new Set((await devices()).map((d) => d.key));
    expect(keys.has('east/wm-0003')).toBe(true);
    expect(keys.has('north/wm-0003')).toBe(false);

    const retire = await call('POST', '/api/fleet/devices/south/wm-0002/retire', ADMIN_TOKEN, {
      note: 'replaced',
    });
    expect(retire.status).toBe(200);
    expect((await devices()).some((d) => d.key === 'south/wm-0002')).toBe(false);
    const fleet = (await call('GET', '/api/fleet/devices', ADMIN_TOKEN)).body.devices as {
      device: { site: string; id: string };
      retired: boolean;
    }[];
    expect(fleet.find((d) => d.device.id === 'wm-0002')?.retired).toBe(true);
    expect(fleet.find((d) => d.device.id === 'wm-0003' && d.device.site === 'north')?.retired).toBe(true);

    // An engineer may not put a device back; the admin may.
    const id = (retire.body.change as { id: number }).id;
    expect((await call('POST', `/api/fleet/history/${id}/restore`, ENGINEER)).status).toBe(403);
    expect((await call('POST', `/api/fleet/history/${id}/restore`, ADMIN_TOKEN)).status).toBe(200);
    expect((await devices()).some((d) => d.key === 'south/wm-0002')).toBe(true);
  });

  it('adopts a discovered device with one call', async () => {
    await publishAll(gw.mqttUrl, [
      {
        topic: 'facility/west/water-meter/wm-new/telemetry',
        payload: JSON.stringify({ ts: Date.now(), volume_m3: 1 }),
      },
    ]);
    await waitFor(async () => (await devices()).find((d) => d.key === 'west/wm-new')?.discovered, 10_000);
    const r = await call('POST', '/api/fleet/devices/west/wm-new/adopt', ADMIN_TOKEN);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect((await devices()).find((d) => d.key === 'west/wm-new')?.discovered).toBe(false);
    expect((await call('POST', '/api/fleet/devices/west/wm-new/adopt', ADMIN_TOKEN)).status).toBe(400);
  });
});
