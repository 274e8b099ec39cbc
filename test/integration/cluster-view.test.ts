import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, spawnGateway, type GatewayProcess } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';
import { publishAll, type TestMessage } from '../fixtures/publisher.js';

const PARTITIONS = 8;
// Long enough that a PostgreSQL restart of a few seconds does not fence the partitions: this file
// tests the view, cluster-failover.test.ts the takeover.
const FAILOVER_MS = 10_000;
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

interface AlarmJson {
  id: string;
  site: string;
  device: string;
  rule: string;
  state: string;
}
interface TicketJson {
  id: string;
  site: string;
  alarmId: string | null;
  status: string;
}

/** Smoke at one device per site (distinct sites: no incident groups their alarms into one ticket). */
function smoke(from: number, to: number): TestMessage[] {
  const out: TestMessage[] = [];
  for (let i = from; i < to; i++)
    out.push({
      topic: `facility/view-${i}/env-probe/room-${i}/telemetry`,
      payload: JSON.stringify({ smoke: true, temperature_c: 22, humidity_pct: 45 }),
    });
  return out;
}

/** Server-sent events of `/api/live` into a list until closed. */
function openLive(url: string) {
  const events: { event: string; data: Record<string, unknown> }[] = [];
  const ctl = new AbortController();
  const done = (async () => {
    const res = await fetch(`${url}/api/live`, { signal: ctl.signal, headers: AUTH });
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
        if (event && data) events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
      }
    }
  })().catch((err: Error) => {
    if (err.name !== 'AbortError') throw err;
  });
  return { events, close: () => (ctl.abort(), done) };
}

/**
 * One view of the cluster (ADR 0155–0158) on real servers: two gateways as child processes share
 * PostgreSQL, Mosquitto and InfluxDB; each raises the alarms and tickets of the devices it owns,
 * and each shows every alarm and ticket of the cluster in its API and live stream.
 */
describe('cluster: one view across two instances', () => {
  let pg: Postgres;
  let mosq: Mosquitto;
  let influx: InfluxDB;
  const dirs: string[] = [];
  let a: GatewayProcess;
  let b: GatewayProcess;
  let liveA: ReturnType<typeof openLive>;
  let liveB: ReturnType<typeof openLive>;
  /** The instance a test stopped on purpose. */
  let stopped: GatewayProcess | undefined;

  function config(instanceId: string) {
    const dataDir = mkdtempSync(join(tmpdir(), `fgw-view-${instanceId}-`));
    dirs.push(dataDir);
    return {
      dataDir,
      storage: { postgres: pg.url },
      cluster: { instanceId, partitions: PARTITIONS, failoverMs: FAILOVER_MS },
      mqtt: { url: mosq.url, keepaliveSec: 5 },
      influx: {
        api: 'v1',
        url: influx.url,
        db: 'facility',
        flushIntervalMs: 100,
        retry: { minMs: 100, maxMs: 500 },
      },
    };
  }

  async function owned(g: GatewayProcess): Promise<number> {
    const h = (await (await fetch(`${g.url}/api/health`)).json()) as {
      components: { cluster: { partitions: { owned: number[] } } };
    };
    return h.components.cluster.partitions.owned.length;
  }

  async function health(g: GatewayProcess): Promise<Record<string, Record<string, unknown>>> {
    return (
      (await (await fetch(`${g.url}/api/health`)).json()) as {
        components: Record<string, Record<string, unknown>>;
      }
    ).components;
  }

  async function alarms(g: GatewayProcess): Promise<AlarmJson[]> {
    const res = await fetch(`${g.url}/api/alarms?state=all`, { headers: AUTH });
    if (res.status !== 200) return [];
    return ((await res.json()) as { alarms: AlarmJson[] }).alarms.filter((x) => x.site.startsWith('view-'));
  }

  async function tickets(g: GatewayProcess): Promise<TicketJson[]> {
    const res = await fetch(`${g.url}/api/tickets?limit=500`, { headers: AUTH });
    if (res.status !== 200) return [];
    return ((await res.json()) as { tickets: TicketJson[] }).tickets.filter((x) =>
      x.site.startsWith('view-'),
    );
  }

  beforeAll(async () => {
    [pg, mosq, influx] = await Promise.all([startPostgres(), startMosquitto(), startInfluxDB()]);
    a = await spawnGateway(config('gw-a'));
    b = await spawnGateway(config('gw-b'));
    await waitFor(
      async () => (await owned(a)) === PARTITIONS / 2 && (await owned(b)) === PARTITIONS / 2,
      30_000,
      'partitions shared',
    );
    liveA = openLive(a.url);
    liveB = openLive(b.url);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([liveA?.close(), liveB?.close()]);
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([pg?.close(), mosq?.stop(), influx?.close()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  // A gateway that died shows why (a test waiting on it would only see its HTTP port refuse).
  afterEach(() => {
    for (const g of [a, b])
      if (g && g !== stopped && g.proc.exitCode !== null)
        throw new Error(`gateway ${g.url} exited:\n${g.output()}`);
  });

  it("an alarm and its ticket raised on their owner are in the other instance's lists and live stream", async () => {
    await publishAll(mosq.url, smoke(0, 8));
    for (const g of [a, b]) {
      await waitFor(async () => (await alarms(g)).length === 8, 30_000, `8 alarms on ${g.url}`);
      await waitFor(async () => (await tickets(g)).length === 8, 30_000, `8 tickets on ${g.url}`);
    }
    // Both instances raised some: each shows what the other raised.
    const [ha, hb] = [await health(a), await health(b)];
    expect(Number(ha.alarms!.active)).toBeGreaterThan(0);
    expect(Number(hb.alarms!.active)).toBeGreaterThan(0);
    expect(Number(ha.alarms!.active) + Number(hb.alarms!.active)).toBe(8);
    const fromA = await alarms(a);
    expect(fromA.map((x) => x.device).sort()).toEqual((await alarms(b)).map((x) => x.device).sort());
    // Every ticket lists its alarm, on both.
    const ids = new Set(fromA.map((x) => x.id));
    for (const t of await tickets(b)) expect(ids.has(t.alarmId!)).toBe(true);
    // One alarm's detail and one ticket's detail, read on the instance that does not hold them.
    const t0 = (await tickets(a))[0]!;
    for (const g of [a, b]) {
      const t = (await (await fetch(`${g.url}/api/tickets/${t0.id}`, { headers: AUTH })).json()) as {
        id: string;
        history: unknown[];
      };
      expect(t.id).toBe(t0.id);
      expect(t.history.length).toBeGreaterThan(0);
      const al = (await (await fetch(`${g.url}/api/alarms/${t0.alarmId}`, { headers: AUTH })).json()) as {
        history: { type: string }[];
      };
      expect(al.history.map((h) => h.type)).toContain('raise');
    }
    // Each live stream carries all eight raises and ticket creations, the other instance's too.
    for (const live of [liveA, liveB]) {
      await waitFor(
        () =>
          new Set(
            live.events
              .filter((e) => e.event === 'alarm' && e.data.event === 'raise')
              .map((e) => (e.data.alarm as AlarmJson).device),
          ).size === 8 &&
          new Set(
            live.events
              .filter((e) => e.event === 'ticket' && e.data.event === 'created')
              .map((e) => (e.data.ticket as TicketJson).id),
          ).size === 8,
        20_000,
        'eight raises and eight tickets on the live stream',
      );
    }
  }, 90_000);

  it('ticket numbers are unique across the instances', async () => {
    const list = await tickets(a);
    expect(list).toHaveLength(8);
    expect(new Set(list.map((t) => t.id)).size).toBe(8);
    const [ha, hb] = [await health(a), await health(b)];
    // Both gave out numbers (per-instance numbering would have given both WO-000001).
    expect(Number(ha.workorders!.created)).toBeGreaterThan(0);
    expect(Number(hb.workorders!.created)).toBeGreaterThan(0);
    for (const t of list) expect(t.id).toMatch(/^WO-\d{6,}$/);
  }, 30_000);

  it('an ack sent to the instance that does not hold the alarm is forwarded to its holder', async () => {
    const list = await alarms(b);
    const holders: string[] = [];
    for (const x of list) {
      const res = await fetch(`${b.url}/api/alarms/${x.id}/ack`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json' },
        body: JSON.stringify({ note: 'seen from b' }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(((await res.json()) as AlarmJson).state).toBe('active-acknowledged');
      holders.push(res.headers.get('x-gateway-holder') ?? 'local');
    }
    // Some were b's own, the others were acknowledged on a.
    expect(holders).toContain('gw-a');
    expect(holders).toContain('local');
    for (const g of [a, b])
      await waitFor(
        async () => (await alarms(g)).every((x) => x.state === 'active-acknowledged'),
        20_000,
        `acks on ${g.url}`,
      );
    // A second ack, again through b, is refused by the holder with its own answer.
    const again = await fetch(`${b.url}/api/alarms/${list[0]!.id}/ack`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(again.status).toBe(409);
  }, 60_000);

  it('changes made while PostgreSQL was down reach the view after it restarts', async () => {
    await pg.kill();
    await publishAll(mosq.url, smoke(8, 12));
    // Raised locally (the alarms do not wait for PostgreSQL), queued for the view.
    await waitFor(
      async () => {
        const [ha, hb] = [await health(a), await health(b)];
        return Number(ha.alarms!.active) + Number(hb.alarms!.active) === 12;
      },
      20_000,
      'alarms raised during the outage',
    );
    await waitFor(
      async () => {
        const [ha, hb] = [await health(a), await health(b)];
        return Number(ha['cluster view']!.pending) + Number(hb['cluster view']!.pending) > 0;
      },
      10_000,
      'changes pending',
    );
    await pg.start();
    for (const g of [a, b]) {
      await waitFor(async () => (await alarms(g)).length === 12, 40_000, `12 alarms on ${g.url}`);
      await waitFor(async () => (await tickets(g)).length === 12, 20_000, `12 tickets on ${g.url}`);
    }
    expect(new Set((await tickets(a)).map((t) => t.id)).size).toBe(12);
    // The live streams catch up too (the feed reconnects and reads past its cursors).
    for (const live of [liveA, liveB])
      await waitFor(
        () =>
          new Set(
            live.events
              .filter((e) => e.event === 'alarm' && e.data.event === 'raise')
              .map((e) => (e.data.alarm as AlarmJson).device),
          ).size === 12,
        20_000,
        'twelve raises on the live stream',
      );
    // /metrics shows the copy caught up and the feed listening again.
    await waitFor(
      async () => {
        const text = await (await fetch(`${a.url}/metrics`)).text();
        return (
          /^gateway_view_pending_changes 0$/m.test(text) && /^gateway_view_feed_connected 1$/m.test(text)
        );
      },
      10_000,
      'view metrics',
    );
  }, 90_000);

  it('a change to the alarm of an instance that stopped is refused naming it until the alarm has moved, then accepted', async () => {
    await publishAll(mosq.url, smoke(12, 20));
    await waitFor(async () => (await alarms(b)).length === 20, 30_000, '20 alarms on b');
    const open = (await alarms(b)).filter((x) => x.state === 'active-unacknowledged');
    expect(open.length).toBe(12);
    await liveA.close();
    stopped = a;
    await a.stop();
    // gw-a's alarms move to gw-b with their partitions (ADR 0160). Until one has, its ack is refused
    // naming gw-a (never applied elsewhere, never lost); once it has, gw-b takes the ack itself.
    const refused: Array<{ status: number; code?: string; holder?: string }> = [];
    for (const x of open) {
      await waitFor(
        async () => {
          const res = await fetch(`${b.url}/api/alarms/${x.id}/ack`, {
            method: 'POST',
            headers: { ...AUTH, 'content-type': 'application/json' },
            body: '{}',
          });
          if (res.status === 200) return true;
          const body = (await res.json()) as { error?: { code: string; holder: string; message: string } };
          refused.push({ status: res.status, code: body.error?.code, holder: body.error?.holder });
          if (res.status === 503) expect(body.error!.message).toContain('"gw-a"');
          return false;
        },
        30_000,
        `alarm ${x.id} acknowledged on gw-b`,
      );
    }
    for (const x of refused)
      expect(x).toEqual({ status: 503, code: 'GW_ERR_HOLDER_UNAVAILABLE', holder: 'gw-a' });
    // Every one of them is now gw-b's, acknowledged once.
    const acked = async () =>
      (await alarms(b)).filter((x) => open.some((o) => o.id === x.id) && x.state === 'active-acknowledged');
    await waitFor(async () => (await acked()).length === open.length, 10_000, 'the acks in the view');
  }, 60_000);
});
