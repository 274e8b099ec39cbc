import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import modbusSerial from 'modbus-serial';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOfDevice } from '../../gateway/src/cluster/partition.js';
import {
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
import { freePort, waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';

// A CommonJS module: the server class is a property of its default export.
const { ServerTCP } = modbusSerial;

const PARTITIONS = 8;
const FAILOVER_MS = 3000;
const POLL_MS = 200;
const SITE = 'polled-plant';
const METERS = 6;

/**
 * Issue 15 for polled sources (ADR 0177), on real servers: two gateways as child processes poll
 * the same Modbus TCP water meters every 200 ms (each through its own modbus-serial TCP server; both
 * serve one index that grows with time). The owner of some meters is SIGKILLed and never returns.
 * The survivor polled those meters all along and kept the readings; at the takeover it replays those
 * newer than the dead owner's durable watermark. In InfluxDB each such meter then has a point in
 * every poll slot across the failover window (no gap), each slot once, and its consumption adds up
 * exactly to the index difference. So that this holds not only by luck, the survivor's server
 * answers its polls of those meters with an exception for the last second before the kill: the
 * survivor misses slots the dead owner wrote after its watermark (ADR 0177 addendum).
 */
describe('cluster: SIGKILL of the owner of polled Modbus meters', () => {
  let pg: Postgres;
  let mosq: Mosquitto;
  let influx: InfluxDB;
  /** Each member's Modbus server, by instance id, and the units it answers with an exception. */
  const servers = new Map<
    string,
    { server: InstanceType<typeof ServerTCP>; port: number; fail: Set<number> }
  >();
  const dirs: string[] = [];
  const procs = new Map<string, GatewayProcess>();
  const t0 = Date.now();
  /** One litre every 10 ms: each 200 ms slot books about 20 L on every meter. */
  const litres = (unit: number): number => Math.floor((Date.now() - t0) / 10) + unit * 1_000_000;

  async function startServer(instanceId: string): Promise<void> {
    const port = await freePort();
    const fail = new Set<number>();
    const read = (addr: number, unit: number): number => {
      // A Modbus exception (server device failure): the poll hands over a bad reading, no index.
      if (fail.has(unit)) throw Object.assign(new Error('failing on purpose'), { modbusErrorCode: 4 });
      const v = litres(unit);
      return addr === 0 ? Math.floor(v / 65536) : addr === 1 ? v % 65536 : 0;
    };
    const server = new ServerTCP(
      {
        getHoldingRegister: (addr: number, unit: number) => read(addr, unit),
        getMultipleHoldingRegisters: (addr: number, length: number, unit: number) =>
          Array.from({ length }, (_, i) => read(addr + i, unit)),
      },
      { host: '127.0.0.1', port, unitID: 255 },
    );
    await new Promise<void>((resolve, reject) => {
      server.once('initialized', () => resolve());
      server.once('serverError', (err: unknown) => reject(err as Error));
    });
    server.on('socketError', () => undefined);
    servers.set(instanceId, { server, port, fail });
  }

  beforeAll(async () => {
    await Promise.all([startServer('gw-p'), startServer('gw-q')]);
    [pg, mosq, influx] = await Promise.all([startPostgres(), startMosquitto(), startInfluxDB()]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...procs.values()].map((p) => p.stop()));
    await Promise.all([...servers.values()].map((s) => new Promise<void>((r) => s.server.close(() => r()))));
    await Promise.all([pg?.close(), mosq?.stop(), influx?.close()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const meter = (i: number) => `meter-${i}`;

  const shared = (): ClusterShared => ({
    postgres: pg.url,
    mqtt: mosq.url,
    influx: influx.url,
    partitions: PARTITIONS,
    failoverMs: FAILOVER_MS,
  });

  async function start(instanceId: string): Promise<GatewayProcess> {
    const dataDir = mkdtempSync(join(tmpdir(), `fgw-polled-${instanceId}-`));
    dirs.push(dataDir);
    const p = await spawnMember(shared(), instanceId, dataDir, {
      modbus: {
        connections: [
          {
            name: 'meters',
            transport: 'tcp',
            host: '127.0.0.1',
            port: servers.get(instanceId)!.port,
            reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
          },
        ],
        groups: { fast: { intervalMs: POLL_MS } },
        devices: Array.from({ length: METERS }, (_, i) => ({
          id: meter(i),
          site: SITE,
          kind: 'water-meter',
          connection: 'meters',
          group: 'fast',
          unitId: i + 1,
          timeoutMs: 150,
          retries: 0,
          registers: [{ metric: 'volume_m3', table: 'holding', address: 0, type: 'uint32', scale: 0.001 }],
        })),
      },
    });
    procs.set(instanceId, p);
    return p;
  }

  const alive = () => aliveMembers(procs);

  const series = (device: string) => meterSeries(influx, device);

  it('every poll slot of the dead owner’s meters across the failover is in InfluxDB, once, consumption booked once', async () => {
    await start('gw-p');
    await start('gw-q');
    await waitFor(() => spread(alive(), PARTITIONS, 1), 30_000, 'p and q share the partitions');
    const members = await Promise.all([...procs].map(async ([id, g]) => ({ id, g, parts: await owned(g) })));
    const partOf = (i: number) => partitionOfDevice(SITE, meter(i), PARTITIONS);
    // The victim: a member owning at least one meter (each meter hashes to one partition).
    const victim = members.find((m) =>
      Array.from({ length: METERS }, (_, i) => i).some((i) => m.parts.includes(partOf(i))),
    );
    expect(victim, 'a member owns a meter').toBeDefined();
    const survivor = members.find((m) => m !== victim)!;
    const victims = Array.from({ length: METERS }, (_, i) => i).filter((i) =>
      victim!.parts.includes(partOf(i)),
    );

    // Both poll for a while: the victim writes its meters, the survivor keeps them for a takeover.
    await waitFor(
      async () => (await series(meter(victims[0]!))).length >= 10,
      20_000,
      'the victim writes its meters',
    );
    // The survivor misses its polls of the victim's meters for the last second before the kill
    // (5 slots); the victim writes them, after its last watermark for at least the newest ones.
    const fail = servers.get(survivor.id)!.fail;
    for (const i of victims) fail.add(i + 1);
    await new Promise((r) => setTimeout(r, 5 * POLL_MS));
    // Killed only once the victim's polls of the missed slots are in InfluxDB up to its last two
    // slots: on a busy machine its writes lag, and what both lost (the survivor by the failures,
    // the victim by the kill) would otherwise be a gap no member could have filled.
    await waitFor(
      async () => {
        const since = Date.now() - 2 * POLL_MS;
        for (const i of victims) if (!(await series(meter(i))).some((p) => p.t >= since)) return false;
        return true;
      },
      10_000,
      'the victim’s polls of the missed slots in InfluxDB',
    );
    fail.clear();
    const killedAt = Date.now();
    await victim!.g.kill();
    procs.delete(victim!.id);
    await waitFor(
      async () => (await owned(survivor.g)).length === PARTITIONS,
      FAILOVER_MS * 4,
      'the survivor takes every partition over',
    );
    const tookAt = Date.now();
    // A few more polls after the takeover, written.
    await new Promise((r) => setTimeout(r, 2000));
    for (const i of victims) {
      await waitFor(
        async () => (await series(meter(i))).some((p) => p.t > tookAt + 1000),
        10_000,
        `meter ${i} written after the takeover`,
      );
      const pts = await series(meter(i));
      // The failover window: from before the kill to after the takeover.
      const window = pts.filter((p) => p.t >= killedAt - 2000 && p.t <= tookAt + 1000);
      // Every point on a poll slot (one point per slot, also where both members polled it).
      for (const p of pts) expect(p.t % POLL_MS, `meter ${i} at ${p.t}`).toBe(0);
      let maxGap = 0;
      for (let k = 1; k < window.length; k++) maxGap = Math.max(maxGap, window[k]!.t - window[k - 1]!.t);
      // A slot may be skipped when a poll is late (a busy machine), never the whole failover.
      expect(maxGap, `meter ${i}: longest gap across the failover (ms)`).toBeLessThanOrEqual(3 * POLL_MS);
      expect(window.length, `meter ${i}: points in the failover window`).toBeGreaterThan(
        (tookAt + 1000 - (killedAt - 2000)) / POLL_MS / 2,
      );
      // Consumption: the first point is the meter's base, every later one books its difference;
      // the replayed polls overwrite the dead owner's points of the same slots, and at the slots the
      // survivor missed its replay wrote a zero consumption over the dead owner's, so its next
      // reading books them once: the sum is the index difference, exactly. Without that, each slot
      // missed after the watermark was booked twice (20 L each).
      const excess =
        pts.reduce((s, p) => s + (p.consumption ?? 0), 0) - (pts[pts.length - 1]!.volume - pts[0]!.volume);
      expect(
        Math.abs(excess),
        `meter ${i}: consumption booked beyond the index difference (m³)`,
      ).toBeLessThan(1e-9);
    }
    // The survivor replayed the polls it kept, and lost none of them to an overrun.
    const health = (await (await fetch(`${survivor.g.url}/api/health`)).json()) as {
      components: {
        cluster: { replay: { replayed: number; filledSlots: number; readings: { overruns: number } } };
      };
    };
    const replay = health.components.cluster.replay;
    expect(replay.replayed).toBeGreaterThan(0);
    // The slots it missed on purpose before the kill, zeroed at the takeover.
    expect(replay.filledSlots).toBeGreaterThan(0);
    expect(replay.readings.overruns).toBe(0);
  }, 60_000);
});
