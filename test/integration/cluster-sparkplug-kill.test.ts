import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { get as sparkplugPayload } from 'sparkplug-payload';
import type { UMetric } from 'sparkplug-payload/lib/sparkplugbpayload.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOfDevice } from '../../gateway/src/cluster/partition.js';
import {
  AUTH,
  owned,
  spread,
  meterSeries,
  spawnMember,
  type ClusterShared,
  aliveMembers,
} from '../fixtures/cluster.js';
import { type GatewayProcess } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';

const PARTITIONS = 8;
const FAILOVER_MS = 3000;
const SLOT_MS = 200;
const SITE = 'spb-plant';
const GROUP = 'facility';
const NODE = 'edge-1';
const HOST_ID = 'facility-gw';
const METERS = 10;
const STATE_TOPIC = `spBv1.0/STATE/${HOST_ID}`;

/** The independent Sparkplug B codec (Eclipse Tahu's sparkplug-payload), not the gateway's. */
const codec = sparkplugPayload('spBv1.0')!;
const meter = (i: number) => `meter-${i}`;
const spbDevice = (i: number) => `m${i}`;

/**
 * A Sparkplug B edge node written against sparkplug-payload: NBIRTH (bdSeq, rebirth control),
 * one DBIRTH per water meter (Volume, alias 1), then every 200 ms one DDATA per meter by alias,
 * timestamped on the 200 ms slot by the edge node. A rebirth command is answered with a rebirth.
 */
class EdgeNode {
  private seq = 0;
  private timer?: NodeJS.Timeout;
  readonly sent = new Map<string, number[]>();
  rebirthCommands = 0;

  constructor(
    private readonly client: MqttClient,
    private readonly litres: (unit: number, at: number) => number,
  ) {
    client.on('message', (topic, payload) => {
      const p = codec.decodePayload(payload);
      if (p.metrics?.some((m) => m.name === 'Node Control/Rebirth' && m.value === true)) {
        this.rebirthCommands++;
        this.birth(Date.now());
      }
    });
  }

  static async start(url: string, litres: (unit: number, at: number) => number): Promise<EdgeNode> {
    const death = codec.encodePayload({
      timestamp: Date.now(),
      metrics: [{ name: 'bdSeq', type: 'Int64', value: 0 }],
    });
    const client = await connectAsync(url, `${NODE}-client`, {
      topic: `spBv1.0/${GROUP}/NDEATH/${NODE}`,
      payload: Buffer.from(death),
      qos: 1,
      retain: false,
    });
    await client.subscribeAsync(`spBv1.0/${GROUP}/NCMD/${NODE}`, { qos: 1 });
    const n = new EdgeNode(client, litres);
    n.birth(Date.now());
    return n;
  }

  private publish(type: string, device: string | undefined, timestamp: number, metrics: UMetric[]): void {
    const topic = `spBv1.0/${GROUP}/${type}/${NODE}${device === undefined ? '' : `/${device}`}`;
    const seq = type === 'NBIRTH' ? 0 : this.seq;
    this.seq = (seq + 1) % 256;
    this.client.publish(topic, Buffer.from(codec.encodePayload({ timestamp, seq, metrics })), { qos: 1 });
  }

  birth(now: number): void {
    this.publish('NBIRTH', undefined, now, [
      { name: 'bdSeq', type: 'Int64', value: 0 },
      { name: 'Node Control/Rebirth', type: 'Boolean', value: false },
    ]);
    // A birth carries a value too: a reading of its own.
    for (let i = 0; i < METERS; i++) {
      this.publish('DBIRTH', spbDevice(i), now, [
        { name: 'Volume', alias: 1, type: 'Double', value: this.litres(i, now) / 1000, timestamp: now },
      ]);
      this.record(i, now);
    }
  }

  private record(i: number, ts: number): void {
    const list = this.sent.get(meter(i)) ?? [];
    list.push(ts);
    this.sent.set(meter(i), list);
  }

  /** Publishes a DDATA per meter on every slot from now on. */
  run(): void {
    const tick = (): void => {
      const now = Date.now();
      const slot = now - (now % SLOT_MS);
      for (let i = 0; i < METERS; i++) {
        // By alias only, as edge nodes do after the birth.
        this.publish('DDATA', spbDevice(i), slot, [
          { alias: 1, type: 'Double', value: this.litres(i, slot) / 1000, timestamp: slot } as UMetric,
        ]);
        this.record(i, slot);
      }
      this.timer = setTimeout(tick, SLOT_MS - (Date.now() % SLOT_MS) + 5);
    };
    this.timer = setTimeout(tick, SLOT_MS - (Date.now() % SLOT_MS) + 5);
  }

  /**
   * A sequence gap: one DDATA lost on the way (its number skipped) and the next one sent. Every
   * member drops it and waits for a rebirth; it is not a reading to find in InfluxDB.
   */
  gap(): void {
    this.seq = (this.seq + 1) % 256;
    const now = Date.now();
    this.publish('DDATA', spbDevice(0), now, [
      { alias: 1, type: 'Double', value: this.litres(0, now) / 1000, timestamp: now } as UMetric,
    ]);
  }

  /** DDEATH of one device (`alive` false) or its DBIRTH again. */
  device(i: number, alive: boolean): void {
    const now = Date.now();
    if (!alive) return this.publish('DDEATH', spbDevice(i), now, []);
    this.publish('DBIRTH', spbDevice(i), now, [
      { name: 'Volume', alias: 1, type: 'Double', value: this.litres(i, now) / 1000, timestamp: now },
    ]);
    this.record(i, now);
  }

  pause(): void {
    clearTimeout(this.timer);
  }

  async stop(): Promise<void> {
    this.pause();
    await this.client.endAsync();
  }
}

function connectAsync(
  url: string,
  clientId: string,
  will?: { topic: string; payload: Buffer; qos: 1; retain: boolean },
): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = connect(url, { clientId, will, reconnectPeriod: 0 });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

/**
 * Issue 15 for Sparkplug B (ADR 0181), on real servers: two gateways as child processes with
 * Sparkplug enabled and the same host id, one edge node (published with sparkplug-payload) whose
 * water meters hash to partitions of both. Every DDATA reading lands in InfluxDB exactly once. The
 * owner of some meters is SIGKILLed and never returns: the survivor decoded its meters all along,
 * kept their readings in the ring and replays those newer than the dead owner's watermark, so
 * every reading published across the kill is in InfluxDB, once, and consumption adds up to the
 * index difference. A sequence gap before the kill gets one rebirth request, not one per member;
 * the kill gets none; and the host STATE in force is online at the end.
 */
describe('cluster: Sparkplug B edge node, SIGKILL of the owner of some of its devices', () => {
  let pg: Postgres;
  let mosq: Mosquitto;
  let influx: InfluxDB;
  let edge: EdgeNode | undefined;
  let observer: MqttClient | undefined;
  const dirs: string[] = [];
  const procs = new Map<string, GatewayProcess>();
  const t0 = Date.now();
  /** One litre every 10 ms: each 200 ms slot books 20 L on every meter. */
  const litres = (unit: number, at: number): number => Math.floor((at - t0) / 10) + unit * 1_000_000;
  const states: Array<{ online: boolean; timestamp: number }> = [];
  let commands = 0;

  beforeAll(async () => {
    [pg, mosq, influx] = await Promise.all([startPostgres(), startMosquitto(), startInfluxDB()]);
    observer = await connectAsync(mosq.url, 'spb-observer');
    observer.on('message', (topic, payload) => {
      if (topic === STATE_TOPIC) states.push(JSON.parse(payload.toString()) as (typeof states)[number]);
      else commands++;
    });
    await observer.subscribeAsync([STATE_TOPIC, `spBv1.0/${GROUP}/NCMD/#`], { qos: 1 });
  }, 120_000);

  afterAll(async () => {
    await edge?.stop();
    await observer?.endAsync();
    await Promise.all([...procs.values()].map((p) => p.stop()));
    await Promise.all([pg?.close(), mosq?.stop(), influx?.close()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const shared = (): ClusterShared => ({
    postgres: pg.url,
    mqtt: mosq.url,
    influx: influx.url,
    partitions: PARTITIONS,
    failoverMs: FAILOVER_MS,
  });

  async function start(instanceId: string): Promise<GatewayProcess> {
    const dataDir = mkdtempSync(join(tmpdir(), `fgw-spb-${instanceId}-`));
    dirs.push(dataDir);
    const p = await spawnMember(shared(), instanceId, dataDir, {
      sparkplug: {
        enabled: true,
        hostId: HOST_ID,
        groups: [GROUP],
        rebirthMinIntervalMs: 1000,
        devices: Array.from({ length: METERS }, (_, i) => ({
          group: GROUP,
          node: NODE,
          device: spbDevice(i),
          site: SITE,
          id: meter(i),
          kind: 'water-meter',
          metrics: { Volume: { metric: 'volume_m3' } },
        })),
      },
    });
    procs.set(instanceId, p);
    return p;
  }

  const alive = () => aliveMembers(procs);

  interface SpbHealth {
    devicesOnline: number;
    rebirthRequests: number;
  }
  async function spb(g: GatewayProcess): Promise<SpbHealth> {
    const h = (await (await fetch(`${g.url}/api/health`)).json()) as { components: { sparkplug: SpbHealth } };
    return h.components.sparkplug;
  }

  async function deviceState(g: GatewayProcess, device: string): Promise<string> {
    const r = await fetch(`${g.url}/api/devices/${SITE}%2F${device}`, { headers: AUTH });
    return ((await r.json()) as { state: string }).state;
  }

  const series = (device: string) => meterSeries(influx, device);

  it('every DDATA reading is in InfluxDB once, across the kill of an owner; one rebirth request per gap', async () => {
    await start('gw-a');
    await start('gw-b');
    await waitFor(() => spread(alive(), PARTITIONS, 1), 30_000, 'a and b share the partitions');
    const members = await Promise.all([...procs].map(async ([id, g]) => ({ id, g, parts: await owned(g) })));
    const partOf = (i: number) => partitionOfDevice(SITE, meter(i), PARTITIONS);
    const all = Array.from({ length: METERS }, (_, i) => i);
    const ownedBy = (m: (typeof members)[number]) => all.filter((i) => m.parts.includes(partOf(i)));
    // The edge node's meters are processed by both members.
    for (const m of members) expect(ownedBy(m).length, `meters owned by ${m.id}`).toBeGreaterThan(0);
    const [victim, survivor] = members as [(typeof members)[number], (typeof members)[number]];
    const victims = ownedBy(victim);

    edge = await EdgeNode.start(mosq.url, litres);
    // Both members decode every birth: every meter online on each.
    await waitFor(
      async () => (await Promise.all(alive().map(spb))).every((h) => h.devicesOnline === METERS),
      10_000,
      'both members see every meter born',
    );
    edge.run();
    // A sequence gap while both members are up: every member sees it, one asks for the rebirth.
    await new Promise((r) => setTimeout(r, 1000));
    edge.pause();
    edge.gap();
    await waitFor(() => edge!.rebirthCommands >= 1, 10_000, 'a rebirth request for the gap');
    // Time for a second member's request to arrive, were there one.
    await new Promise((r) => setTimeout(r, 500));
    expect(edge.rebirthCommands, 'rebirth requests for one gap').toBe(1);
    const asked = await Promise.all(alive().map(spb));
    expect(asked.map((h) => h.rebirthRequests).sort(), 'rebirth requests per member').toEqual([0, 1]);
    // Presence: a DDEATH marks the device offline on every member (owner or not), its DBIRTH
    // clears that on every member.
    const last = METERS - 1;
    edge.device(last, false);
    await waitFor(
      async () =>
        (await Promise.all(alive().map((g) => deviceState(g, meter(last))))).every((s) => s === 'offline'),
      5000,
      'the dead device offline on both members',
    );
    edge.device(last, true);
    await waitFor(
      async () => (await Promise.all(alive().map(spb))).every((h) => h.devicesOnline === METERS),
      5000,
      'the device born again on both members',
    );
    edge.run();
    await waitFor(
      async () => (await series(meter(victims[0]!))).length >= 10,
      20_000,
      'the victim writes its meters',
    );
    const killedAt = Date.now();
    await victim.g.kill();
    procs.delete(victim.id);
    await waitFor(
      async () => (await owned(survivor.g)).length === PARTITIONS,
      FAILOVER_MS * 4,
      'the survivor takes every partition over',
    );
    const tookAt = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    edge.pause();
    const lastSlot = Math.max(...edge.sent.get(meter(0))!);
    await waitFor(
      async () => {
        for (const i of all) if (!(await series(meter(i))).some((p) => p.t === lastSlot)) return false;
        return true;
      },
      10_000,
      'the last slot written for every meter',
    );

    for (const i of all) {
      const pts = await series(meter(i));
      const sent = edge.sent.get(meter(i))!;
      const times = pts.map((p) => p.t);
      // Exactly the published readings: none missing across the kill, none twice.
      expect(
        sent.filter((t) => !times.includes(t)),
        `meter ${i} (${victims.includes(i) ? 'victim' : 'survivor'}): missing slots (killed ${killedAt}, taken ${tookAt})`,
      ).toEqual([]);
      expect(times.length, `meter ${i}: points in InfluxDB`).toBe(new Set(sent).size);
      // Consumption: the replayed readings overwrite the dead owner's of the same timestamps,
      // so the sum is the index difference (one slot, 20 L, at most booked twice: ADR 0177).
      const excess =
        pts.reduce((s, p) => s + (p.consumption ?? 0), 0) - (pts[pts.length - 1]!.volume - pts[0]!.volume);
      expect(excess, `meter ${i}: consumption beyond the index difference (m³)`).toBeGreaterThan(-1e-6);
      expect(excess, `meter ${i}: consumption beyond the index difference (m³)`).toBeLessThan(0.025);
    }

    // The survivor replayed the victim's meters from its ring.
    const health = (await (await fetch(`${survivor.g.url}/api/health`)).json()) as {
      components: { cluster: { replay: { replayed: number; readings: { overruns: number } } } };
    };
    expect(health.components.cluster.replay.replayed).toBeGreaterThan(0);
    expect(health.components.cluster.replay.readings.overruns).toBe(0);
    // The one rebirth request of the gap, and none for the kill (the survivor missed nothing).
    expect(commands, 'rebirth commands seen on the broker').toBe(1);
    expect(edge.rebirthCommands).toBe(1);
    // The victim connected first: its will is older than the birth in force (the survivor's), so
    // an edge node (Sparkplug 3.0) ignores it; every offline STATE seen is older than an online one
    // before it. The survivor then puts its birth back over the retained will.
    states.forEach((s, k) => {
      if (s.online) return;
      const newest = Math.max(
        ...states
          .slice(0, k)
          .filter((x) => x.online)
          .map((x) => x.timestamp),
      );
      expect(s.timestamp, `offline STATE ${k} of ${JSON.stringify(states)}`).toBeLessThan(newest);
    });
    expect(
      states.some((s) => !s.online),
      'the victim’s will was published',
    ).toBe(true);
    expect(states.at(-1)?.online, `STATE messages: ${JSON.stringify(states)}`).toBe(true);
  }, 60_000);

  it('the death of the newest member: a survivor connects again and its birth is newer than the will', async () => {
    const survivor = alive()[0]!;
    const before = states.length;
    // A newer member: its birth is the one in force (the older survivor does not re-assert).
    const newest = await start('gw-c');
    await waitFor(() => states.slice(before).some((s) => s.online), 10_000, 'the new member’s STATE birth');
    const birth = states.slice(before).find((s) => s.online)!;
    expect(states.at(-1), 'the birth in force').toEqual(birth);
    await newest.kill();
    procs.delete('gw-c');
    // Edge nodes take its will (not older than the last online STATE) as the host's death, and
    // accept only an online STATE not older than it: the survivor's new connection gives one.
    await waitFor(
      () => states.some((s) => !s.online && s.timestamp >= birth.timestamp),
      10_000,
      'the newest member’s will',
    );
    const will = states.findLast((s) => !s.online)!;
    const at = states.lastIndexOf(will);
    await waitFor(
      () => states.slice(at + 1).some((s) => s.online && s.timestamp >= will.timestamp),
      10_000,
      `a newer birth after the will: ${JSON.stringify(states.slice(before))}`,
    );
    // The survivor's old connection may leave its will behind (a DISCONNECT not flushed): older than
    // its new birth, ignored by edge nodes and answered with the birth again. Online in the end.
    await new Promise((r) => setTimeout(r, 1000));
    await waitFor(
      () => states.at(-1)!.online,
      5000,
      `online in the end: ${JSON.stringify(states.slice(before))}`,
    );
    const end = states.at(-1)!;
    for (const s of states.slice(states.indexOf(will) + 1))
      if (!s.online)
        expect(s.timestamp, 'a later offline STATE is older than the birth in force').toBeLessThan(
          end.timestamp,
        );
    expect(survivor.proc.exitCode).toBeNull();
  }, 40_000);

  it('a clean stop of an older member does not announce the host’s death', async () => {
    const [older] = [...procs.entries()][0]!;
    const before = states.length;
    await start('gw-d');
    await waitFor(() => states.slice(before).some((s) => s.online), 10_000, 'the newer member’s birth');
    const birth = states.slice(before).find((s) => s.online)!;
    expect(await procs.get(older)!.stop()).toBe(0);
    procs.delete(older);
    await new Promise((r) => setTimeout(r, 1000));
    // No offline STATE an edge node would act on (not older than the birth in force).
    const after = states.slice(before);
    expect(
      after.filter((s) => !s.online && s.timestamp >= birth.timestamp),
      JSON.stringify(after),
    ).toEqual([]);
    expect(states.at(-1)?.online).toBe(true);
  }, 30_000);
});
