import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOfDevice } from '../../gateway/src/cluster/partition.js';
import { AUTH, owned, spread, ViewTables, memberConfig } from '../fixtures/cluster.js';
import { spawnGateway, type GatewayProcess } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';

const PARTITIONS = 8;
const FAILOVER_MS = 3000;
const SITE = 'inc-plant';
const RULE = 'serverroom.smoke';
/** Three smoke alarms of the site make an incident: no member sees three of the four on its own. */
const THRESHOLD = 3;
const WINDOW_MS = 4000;

interface IncidentJson {
  id: string;
  site: string;
  rule: string;
  state: string;
  alarmCount: number;
}
interface IncidentTicketBody {
  incidentId?: string | null;
  devices?: string[];
  alarmIds?: string[];
}

/**
 * Issue 15 / ADR 0170, on real servers with gateways as child processes: smoke at four devices of
 * one site, two in partitions of each member, is one incident and one incident ticket across the
 * cluster (the threshold counted over both members' alarms); the member holding the incident
 * ticket is SIGKILLed and the survivor holds it (same ids), and the incident closes once when the
 * alarms clear.
 */
describe('cluster: one incident per site and rule across the members', () => {
  let pgs: Postgres;
  let mosq: Mosquitto;
  let influx: InfluxDB;
  let view: ViewTables;
  let pool: pg.Pool;
  const dirs: string[] = [];
  const procs = new Map<string, GatewayProcess>();
  const devices: string[] = [];
  let incident: IncidentJson | undefined;
  let ticketId = '';
  let ticketSeq = 0;

  beforeAll(async () => {
    [pgs, mosq, influx] = await Promise.all([startPostgres(), startMosquitto(), startInfluxDB()]);
    view = new ViewTables(pgs.url);
    pool = new pg.Pool({ connectionString: pgs.url, max: 1 });
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...procs.values()].map((p) => p.stop()));
    await view?.close();
    await pool?.end();
    await Promise.all([pgs?.close(), mosq?.stop(), influx?.close()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function start(instanceId: string): Promise<GatewayProcess> {
    const dataDir = mkdtempSync(join(tmpdir(), `fgw-inc-${instanceId}-`));
    dirs.push(dataDir);
    const base = memberConfig({
      instanceId,
      dataDir,
      postgres: pgs.url,
      mqtt: mosq.url,
      influx: influx.url,
      partitions: PARTITIONS,
      failoverMs: FAILOVER_MS,
    });
    const p = await spawnGateway({
      ...base,
      alarms: {
        tickMs: 200,
        grouping: {
          windowMs: WINDOW_MS,
          counts: { safety: { normal: THRESHOLD, critical: THRESHOLD } },
        },
      },
    });
    procs.set(instanceId, p);
    return p;
  }

  const viewIncidents = async () =>
    (
      await pool.query<{ id: string; instance_id: string; state: string; body: string }>(
        'select id, instance_id, state, body from view_incidents where site = $1',
        [SITE],
      )
    ).rows.map((r) => ({ ...r, body: JSON.parse(r.body) as IncidentJson }));

  const apiIncidents = async (g: GatewayProcess) => {
    const r = await fetch(`${g.url}/api/incidents`, { headers: AUTH });
    const list = ((await r.json()) as { incidents: IncidentJson[] }).incidents;
    return list.filter((i) => i.site === SITE);
  };

  const incidentTickets = async (id: string) =>
    (await view.tickets(SITE)).filter((t) => (t.body as IncidentTicketBody).incidentId === id);

  async function publish(pub: mqtt.MqttClient, device: string, smoke: boolean): Promise<void> {
    await pub.publishAsync(
      `facility/${SITE}/env-probe/${device}/telemetry`,
      JSON.stringify({ ts: Date.now(), smoke, temperature_c: 22, humidity_pct: 45 }),
      { qos: 1 },
    );
  }

  it('a burst over both members is one incident and one incident ticket listing every device', async () => {
    const a = await start('gw-a');
    const b = await start('gw-b');
    await waitFor(() => spread([a, b], PARTITIONS, 1), 30_000, 'a and b share the partitions');
    const partsA = await owned(a);
    // Two devices in partitions of each member, so that neither sees the threshold on its own.
    const onA: string[] = [];
    const onB: string[] = [];
    for (let i = 0; onA.length < 2 || onB.length < 2; i++) {
      const d = `room-${i}`;
      const list = partsA.includes(partitionOfDevice(SITE, d, PARTITIONS)) ? onA : onB;
      if (list.length < 2) list.push(d);
    }
    devices.push(onA[0]!, onB[0]!, onA[1]!, onB[1]!);

    const pub = await mqtt.connectAsync(mosq.url, { clientId: 'inc-pub', clean: true });
    try {
      for (const d of devices) {
        await publish(pub, d, true);
        await new Promise((r) => setTimeout(r, 150));
      }
    } finally {
      await pub.endAsync();
    }

    await waitFor(
      async () => {
        const alarms = (await view.alarms(SITE)).filter((x) => x.rule === RULE);
        const incs = await viewIncidents();
        if (alarms.length !== devices.length || incs.length === 0) return false;
        const t = await incidentTickets(incs[0]!.id);
        return t.length > 0 && new Set((t[0]!.body as IncidentTicketBody).devices).size === devices.length;
      },
      20_000,
      'four alarms, an incident and its ticket listing every device',
    );
    // Settled: no second incident or incident ticket comes late.
    await new Promise((r) => setTimeout(r, 2500));

    const incs = await viewIncidents();
    expect(
      incs.map((i) => ({ state: i.state, count: i.body.alarmCount })),
      'one incident in the view',
    ).toEqual([{ state: 'open', count: devices.length }]);
    incident = incs[0]!.body;
    for (const g of [a, b]) {
      const listed = await apiIncidents(g);
      expect(
        listed.map((i) => ({ id: i.id, state: i.state })),
        `GET /api/incidents on ${g.url}`,
      ).toEqual([{ id: incident.id, state: 'open' }]);
    }
    const tickets = await incidentTickets(incident.id);
    expect(tickets, 'one incident ticket').toHaveLength(1);
    const t = tickets[0]!;
    ticketId = t.id;
    ticketSeq = t.seq;
    expect([...((t.body as IncidentTicketBody).devices ?? [])].sort()).toEqual([...devices].sort());
    const alarmIds = (await view.alarms(SITE)).filter((x) => x.rule === RULE).map((x) => x.id);
    expect([...((t.body as IncidentTicketBody).alarmIds ?? [])].sort()).toEqual([...alarmIds].sort());
    // Every alarm of the burst joined on the one ticket.
    const joined = (await view.entries(t.id)).filter((e) => e.body.action === 'incident-joined');
    expect(joined.length).toBeGreaterThanOrEqual(devices.length);
    // The alarms all carry the incident (on whichever member holds them).
    const bodies = (
      await pool.query<{ body: string }>('select body from view_alarms where site = $1', [SITE])
    ).rows.map((r) => (JSON.parse(r.body) as { incidentId: string | null }).incidentId);
    expect(bodies).toEqual(devices.map(() => incident!.id));
    // Nothing was grouped apart (PostgreSQL answered throughout).
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    expect(metrics).toMatch(/^gateway_cluster_incident_local_groupings 0$/m);
  }, 60_000);

  it('the holder of the incident ticket is killed: the survivor holds it, the incident closes once', async () => {
    expect(ticketId, 'the first test made the incident').not.toBe('');
    const holderId = (await view.tickets(SITE)).find((t) => t.id === ticketId)!.instance_id;
    const victim = procs.get(holderId)!;
    const [survivorId, survivor] = [...procs].find(([id]) => id !== holderId)!;
    await victim.kill();
    procs.delete(holderId);
    await waitFor(
      async () => (await owned(survivor)).length === PARTITIONS,
      FAILOVER_MS * 4,
      'survivor owns all',
    );
    await waitFor(
      async () => (await view.tickets(SITE)).find((t) => t.id === ticketId)?.instance_id === survivorId,
      15_000,
      'survivor holds the incident ticket',
    );

    const pub = await mqtt.connectAsync(mosq.url, { clientId: 'inc-pub-2', clean: true });
    try {
      for (const d of devices) await publish(pub, d, false);
    } finally {
      await pub.endAsync();
    }
    await waitFor(
      async () => (await viewIncidents()).every((i) => i.state === 'closed'),
      WINDOW_MS + 15_000,
      'the incident closes when every alarm of it cleared',
    );
    const incs = await viewIncidents();
    expect(incs.map((i) => ({ id: i.id, state: i.state }))).toEqual([{ id: incident!.id, state: 'closed' }]);
    const groups = (
      await pool.query<{ id: string; state: string }>(
        'select id, state from incident_groups where site = $1',
        [SITE],
      )
    ).rows;
    expect(groups).toEqual([{ id: incident!.id, state: 'closed' }]);
    // Same ticket, same number, held by the survivor; still the one incident ticket.
    const tickets = await incidentTickets(incident!.id);
    expect(tickets.map((t) => ({ id: t.id, seq: t.seq, holder: t.instance_id }))).toEqual([
      { id: ticketId, seq: ticketSeq, holder: survivorId },
    ]);
    const listed = await apiIncidents(survivor);
    expect(listed.map((i) => ({ id: i.id, state: i.state }))).toEqual([
      { id: incident!.id, state: 'closed' },
    ]);
  }, 60_000);
});
