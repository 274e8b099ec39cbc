/**
 * Cluster benchmark (ADR 0150): the backlog drain of bench:ingest through one gateway and through
 * two on this machine, then failover time, on real PostgreSQL, Mosquitto and InfluxDB 1.6.7.
 *
 *   npm run bench:cluster -- [--messages 100000] [--devices 10000] [--partitions 16]
 *                            [--kills 10] [--failover-ms 3000] [--rate 200] [--quick] [--write]
 *
 * Drain: the members start, share the partitions and are paused (SIGSTOP) while the backlog is
 * published; they are resumed together (SIGCONT) and timed until InfluxDB has confirmed every line
 * and no outbox holds any. Failover: two members share the devices; a stream goes to the devices
 * of one of them only, that one is killed (SIGKILL), and the time runs from the kill to the first
 * message the survivor processes (its accepted counter moves: a replay or a new message), `--kills`
 * times, the victim alternating. `--quick`: a smoke run (5,000 messages, 500 devices, 3 kills).
 * BENCH_NODE_ARGS sets the gateways' Node flags as for bench:ingest.
 */
import { parseArgs } from 'node:util';
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startMosquitto, type Mosquitto } from '../test/fixtures/mosquitto.js';
import { startInfluxDB, type InfluxDB } from '../test/fixtures/influxdb.js';
import { startPostgres, type Postgres } from '../test/fixtures/postgres.js';
import { spawnGateway, type GatewayProcess } from '../test/fixtures/gateway.js';
import { waitFor } from '../test/fixtures/ports.js';
import { partitionOfTopic } from '../gateway/src/cluster/partition.js';
import { KINDS, payload } from './payloads.js';
import { backlog, gatewayNodeArgs, health, publish } from './backlog.js';
import { cpuSeconds, peakRssMb, percentile, writeSection } from './lib.js';

const USAGE = `npm run bench:cluster -- [options]
  --messages N      backlog size (default 100000; --quick 5000)
  --devices D       devices the backlog is spread over (default 10000; --quick 500)
  --partitions P    cluster.partitions (default 16)
  --kills K         failovers measured (default 10; --quick 3)
  --failover-ms F   cluster.failoverMs of the failover phase (default 3000)
  --rate R          msg/s streamed to the victim's devices around each kill (default 200)
  --quick           smoke run with the small defaults above
  --write           record the figures in bench/RESULTS.md ("Cluster")
  --help            this text`;

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string' },
    devices: { type: 'string' },
    partitions: { type: 'string', default: '16' },
    kills: { type: 'string' },
    'failover-ms': { type: 'string', default: '3000' },
    rate: { type: 'string', default: '200' },
    quick: { type: 'boolean', default: false },
    write: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}
const QUICK = args.quick;
const N = Number(args.messages ?? (QUICK ? 5000 : 100_000));
const DEVICES = Number(args.devices ?? (QUICK ? 500 : 10_000));
const PARTITIONS = Number(args.partitions);
const KILLS = Number(args.kills ?? (QUICK ? 3 : 10));
const FAILOVER_MS = Number(args['failover-ms']);
const RATE = Number(args.rate);
const bad = Object.entries({
  messages: N,
  devices: DEVICES,
  partitions: PARTITIONS,
  kills: KILLS,
  'failover-ms': FAILOVER_MS,
  rate: RATE,
}).filter(([k, v]) => !Number.isInteger(v) || v < (k === 'failover-ms' ? 1000 : 1));
if (bad.length) {
  // cluster.failoverMs is at least 1000 (the config schema); everything else counts something.
  process.stderr.write(
    `${bad.map(([k, v]) => `--${k} must be a whole number ≥ ${k === 'failover-ms' ? 1000 : 1}, got ${v}`).join('\n')}\n\n${USAGE}\n`,
  );
  process.exit(2);
}
const NODE_ARGS = gatewayNodeArgs();
/** cluster.failoverMs of the drain phase: the pause while the backlog is published must stay well under it. */
const DRAIN_LEASE_MS = 60_000;

interface ClusterHealth {
  partitions: { owned: number[] };
}
const clusterOf = async (g: GatewayProcess): Promise<ClusterHealth> =>
  (
    (await (await fetch(`${g.url}/api/health`)).json()) as {
      components: { cluster: ClusterHealth };
    }
  ).components.cluster;

/** A counter or gauge of the gateway's /metrics. */
const metric = (text: string, name: string): number =>
  Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);

interface Servers {
  pg: Postgres;
  mosq: Mosquitto;
  influx: InfluxDB;
  dirs: string[];
  procs: GatewayProcess[];
}

/** Fresh servers for one phase, so no session, lease or series of another phase weighs on it. */
async function servers(): Promise<Servers> {
  const [pg, mosq, influx] = await Promise.all([startPostgres(), startMosquitto(), startInfluxDB()]);
  await influx.createDb('bench');
  return { pg, mosq, influx, dirs: [], procs: [] };
}

async function closeServers(s: Servers): Promise<void> {
  await Promise.all(s.procs.map((p) => p.kill()));
  await Promise.all([s.pg.close(), s.mosq.stop(), s.influx.close()]);
  for (const d of s.dirs) rmSync(d, { recursive: true, force: true });
}

function memberConfig(s: Servers, instanceId: string, failoverMs: number, keepaliveSec: number) {
  const dataDir = mkdtempSync(join(tmpdir(), `fgw-bench-${instanceId}-`));
  s.dirs.push(dataDir);
  return {
    dataDir,
    logLevel: 'warn',
    storage: { postgres: s.pg.url },
    cluster: { instanceId, partitions: PARTITIONS, failoverMs },
    mqtt: { url: s.mosq.url, keepaliveSec },
    influx: { api: 'v1', url: s.influx.url, db: 'bench' },
  };
}

/** Until the members own every partition between them, as evenly as the count allows. */
async function shared(members: GatewayProcess[]): Promise<number[][]> {
  let owned: number[][] = [];
  await waitFor(
    async () => {
      owned = await Promise.all(members.map(async (m) => (await clusterOf(m)).partitions.owned));
      const counts = owned.map((o) => o.length);
      return (
        counts.reduce((a, b) => a + b, 0) === PARTITIONS &&
        Math.max(...counts) - Math.min(...counts) <= 1 &&
        (
          await Promise.all(members.map(async (m) => (await health(m)).components.mqtt?.state === 'ok'))
        ).every(Boolean)
      );
    },
    120_000,
    'partitions shared',
  );
  return owned;
}

async function drain(instances: number) {
  const s = await servers();
  try {
    // A lease longer than the pause (renewed every fifth of it, which is also how soon a joining
    // member gets its share): members paused while the backlog is published must not take each
    // other's partitions when they wake. Keepalive off, so the broker keeps the paused members connected.
    const cfgs = Array.from({ length: instances }, (_, i) =>
      memberConfig(s, `gw-${String.fromCharCode(97 + i)}`, DRAIN_LEASE_MS, 0),
    );
    const members: GatewayProcess[] = [];
    for (const c of cfgs) {
      const m = await spawnGateway(c, {}, NODE_ARGS, 'dist');
      members.push(m);
      s.procs.push(m);
    }
    await shared(members);
    const takeovers0 = (
      await Promise.all(
        members.map(async (m) =>
          metric(await (await fetch(`${m.url}/metrics`)).text(), 'gateway_cluster_takeovers_total'),
        ),
      )
    ).reduce((a, b) => a + b, 0);
    for (const m of members) m.proc.kill('SIGSTOP');
    const base = Date.now() - (Math.ceil(N / DEVICES) + 5) * 1000;
    const { topics, payloads, values } = backlog(N, DEVICES, base);
    const tp = performance.now();
    await publish(s.mosq.url, topics, payloads);
    const publishSec = (performance.now() - tp) / 1000;

    const pids = members.map((m) => m.proc.pid!);
    const cpu0 = pids.map(cpuSeconds);
    const t0 = performance.now();
    for (const m of members) m.proc.kill('SIGCONT');
    let acceptedAt = 0;
    let lines: number[] = [];
    for (;;) {
      const hs = await Promise.all(members.map(health));
      const accepted = hs.reduce((a, h) => a + (h.components.ingest?.accepted ?? 0), 0);
      if (!acceptedAt && accepted >= N) acceptedAt = performance.now();
      lines = hs.map((h) => h.components.influx?.linesWritten ?? 0);
      if (lines.reduce((a, b) => a + b, 0) >= N && hs.every((h) => h.components.outbox?.pendingLines === 0))
        break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const sec = (performance.now() - t0) / 1000;
    const cpu = pids.reduce((a, pid, i) => a + cpuSeconds(pid) - cpu0[i]!, 0);
    const texts = await Promise.all(members.map(async (m) => (await fetch(`${m.url}/metrics`)).text()));
    const takeovers =
      texts.reduce((a, t) => a + metric(t, 'gateway_cluster_takeovers_total'), 0) - takeovers0;
    if (takeovers > 0)
      console.log(
        `warning: ${takeovers} partition(s) changed hands during the drain (the pause outlasted a lease?)`,
      );
    const overruns = texts
      .map((t) => metric(t, 'gateway_cluster_replay_overruns'))
      .reduce((a, b) => a + b, 0);
    const rss = Math.max(...pids.map(peakRssMb));
    const r = {
      instances,
      publishSec,
      sec,
      msgs: N / sec,
      readings: values / sec,
      takenInMsgs: N / (((acceptedAt || performance.now()) - t0) / 1000),
      cpu: cpu / sec,
      cpuUsPerMsg: (cpu / N) * 1e6,
      linesPerMember: lines,
      overruns,
      takeovers,
      peakRssMb: rss,
    };
    console.log(
      `drain, ${instances} instance${instances > 1 ? 's' : ''}: ${N} messages in ${sec.toFixed(2)} s = ${(r.readings / 1000).toFixed(0)}k readings/s ` +
        `(${(r.msgs / 1000).toFixed(1)}k msg/s; taken in at ${(r.takenInMsgs / 1000).toFixed(1)}k msg/s), ` +
        `CPU ${(r.cpu * 100).toFixed(0)}% of a core = ${r.cpuUsPerMsg.toFixed(1)} µs/msg, lines per member ${lines.join('/')}, ` +
        `replay overruns ${overruns}, partitions changed hands ${takeovers}, peak RSS ${rss.toFixed(0)} MB`,
    );
    await Promise.all(members.map((m) => m.stop()));
    return r;
  } finally {
    await closeServers(s);
  }
}

/** The backlog's topic of device d. */
const topicOf = (d: number): string => `facility/site-${d % 100}/${KINDS[d % 4]!}/dev-${d}/telemetry`;

async function failover() {
  const s = await servers();
  try {
    const ids = ['gw-a', 'gw-b'];
    const cfgs = ids.map((id) => memberConfig(s, id, FAILOVER_MS, 5));
    const members: GatewayProcess[] = [];
    for (const c of cfgs) {
      const m = await spawnGateway(c, {}, NODE_ARGS, 'dist');
      members.push(m);
      s.procs.push(m);
    }
    const firstMs: number[] = [];
    const takeoverMs: number[] = [];
    const pub = await mqtt.connectAsync(s.mosq.url, { clientId: `bench-failover-${process.pid}` });
    let seq = 0;
    for (let k = 0; k < KILLS; k++) {
      const owned = await shared(members);
      const v = k % 2;
      const victim = members[v]!;
      const survivor = members[1 - v]!;
      const mine = new Set(owned[v]);
      const devices: number[] = [];
      for (let d = 0; d < DEVICES && devices.length < 100; d++)
        if (mine.has(partitionOfTopic(topicOf(d), PARTITIONS))) devices.push(d);
      if (!devices.length)
        throw new Error(`no device of ${DEVICES} falls in ${ids[v]}'s partitions: raise --devices`);
      // The stream runs before the kill (the victim is busy when it dies) and after it.
      let streaming = true;
      const stream = (async () => {
        const tick = 10;
        const perTick = Math.max(1, Math.round((RATE * tick) / 1000));
        while (streaming) {
          const t = Date.now();
          for (let i = 0; i < perTick; i++, seq++) {
            const d = devices[seq % devices.length]!;
            pub.publish(topicOf(d), payload(KINDS[d % 4]!, d, seq, t), { qos: 1 });
          }
          await new Promise((r) => setTimeout(r, Math.max(0, tick - (Date.now() - t))));
        }
      })();
      await new Promise((r) => setTimeout(r, 1000));
      const before = metric(
        await (await fetch(`${survivor.url}/metrics`)).text(),
        'gateway_messages_accepted_total',
      );
      const killedAt = performance.now();
      await victim.kill();
      let first = NaN;
      let takeover = NaN;
      const deadline = killedAt + 3 * FAILOVER_MS + 10_000;
      while (performance.now() < deadline && (Number.isNaN(first) || Number.isNaN(takeover))) {
        const text = await (await fetch(`${survivor.url}/metrics`)).text();
        const now = performance.now();
        if (Number.isNaN(first) && metric(text, 'gateway_messages_accepted_total') > before)
          first = now - killedAt;
        if (Number.isNaN(takeover) && metric(text, 'gateway_cluster_owned_partitions') === PARTITIONS)
          takeover = now - killedAt;
        await new Promise((r) => setTimeout(r, 20));
      }
      streaming = false;
      await stream;
      firstMs.push(first);
      takeoverMs.push(takeover);
      console.log(
        `kill ${k + 1}/${KILLS} (${ids[v]}, ${owned[v]!.length} partitions): first reading on ${ids[1 - v]} after ${first.toFixed(0)} ms, all partitions after ${takeover.toFixed(0)} ms`,
      );
      // The killed member again, on its own data folder, as a restarted instance would be.
      const again = await spawnGateway(cfgs[v]!, {}, NODE_ARGS, 'dist');
      members[v] = again;
      s.procs.push(again);
    }
    await pub.endAsync();
    await Promise.all(members.map((m) => m.stop()));
    const ok = firstMs.filter((x) => !Number.isNaN(x));
    return {
      kills: KILLS,
      missed: KILLS - ok.length,
      p50: percentile(ok, 0.5),
      p99: percentile(ok, 0.99),
      takeoverP50: percentile(
        takeoverMs.filter((x) => !Number.isNaN(x)),
        0.5,
      ),
      takeoverP99: percentile(
        takeoverMs.filter((x) => !Number.isNaN(x)),
        0.99,
      ),
      samplesMs: firstMs.map((x) => Math.round(x)),
    };
  } finally {
    await closeServers(s);
  }
}

const load0 = loadavg()[0]!;
const one = await drain(1);
const two = await drain(2);
const fo = await failover();
const load1 = loadavg()[0]!;

const rows = [one, two]
  .map(
    (r) =>
      `| ${r.instances} | ${r.sec.toFixed(2)} s | ${(r.readings / 1000).toFixed(0)}k (${(r.msgs / 1000).toFixed(1)}k msg/s) | ${(r.takenInMsgs / 1000).toFixed(1)}k msg/s | ${(r.cpu * 100).toFixed(0)} % (${r.cpuUsPerMsg.toFixed(1)} µs/msg) | ${r.linesPerMember.join(' / ')} | ${r.overruns} | ${r.peakRssMb.toFixed(0)} MB |`,
  )
  .join('\n');
const table = `| instances | drain | readings/s into InfluxDB | taken in (durable, acked) | CPU of all members (of one core) | lines per member | replay overruns | peak RSS (largest member) |
|---|---|---|---|---|---|---|---|
${rows}

Failover (${fo.kills} SIGKILLs, failoverMs ${FAILOVER_MS}, ${PARTITIONS} partitions, ${RATE} msg/s to the victim's devices): first reading processed by the survivor p50 ${fo.p50.toFixed(0)} ms, p99 ${fo.p99.toFixed(0)} ms; all partitions owned p50 ${fo.takeoverP50.toFixed(0)} ms, p99 ${fo.takeoverP99.toFixed(0)} ms${fo.missed ? `; ${fo.missed} kill(s) with no reading within ${3 * FAILOVER_MS + 10_000} ms` : ''}.`;
console.log('\n' + table + '\n');
console.log(
  JSON.stringify({
    bench: 'cluster',
    quick: QUICK,
    messages: N,
    devices: DEVICES,
    partitions: PARTITIONS,
    load: [Number(load0.toFixed(2)), Number(load1.toFixed(2))],
    drain: [one, two],
    failover: { failoverMs: FAILOVER_MS, rate: RATE, ...fo },
  }),
);

if (args.write) {
  const cmd = `npm run bench:cluster -- ${QUICK ? '--quick ' : ''}--messages ${N} --devices ${DEVICES} --partitions ${PARTITIONS} --kills ${KILLS} --failover-ms ${FAILOVER_MS} --rate ${RATE} --write`;
  writeSection(
    'bench/RESULTS.md',
    'Cluster',
    `Command: \`${cmd}\`
(nproc ${cpus().length}, ${cpus()[0]?.model ?? ''}, Node ${process.version}, gateway flags \`${NODE_ARGS.join(' ')}\`; PostgreSQL 15,
Mosquitto, InfluxDB 1.6.7, the members and the load generator all on this machine; load average ${load0.toFixed(1)} at the start,
${load1.toFixed(1)} at the end), ${new Date().toISOString().slice(0, 10)}.${QUICK ? '\n\n**Smoke run (`--quick`) on a machine loaded by other work: it shows the benchmark runs, not what the cluster can do.**' : ''}

The backlog of bench:ingest (${N.toLocaleString('en')} messages from ${DEVICES.toLocaleString('en')} devices) is published while the
members, sharing the partitions, are paused (SIGSTOP); they are resumed together and timed until InfluxDB confirmed every
line and no outbox holds any. Every member reads every message (its own partitions go to the pipeline, the others' to its
replay window), so two members on the same two cores share the writing, not the reading. Failover: a member is killed with
SIGKILL while a stream goes to its devices; the time runs to the first message the survivor processes (its accepted counter
moves, by a replay or a new message), polled every 20 ms; p99 of ${fo.kills} samples is their largest.

${table}`,
  );
}
process.exit(0);
