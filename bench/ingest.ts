/**
 * Ingest benchmark: the drain of a backlog Mosquitto queued for a persistent session, through
 * the gateway (durable outbox on) into a real InfluxDB 1.6.7, side by side in one run with the
 * floor: a bare mqtt.js subscriber that only parses the JSON and counts.
 *
 *   npm run bench:ingest -- [--messages 200000] [--devices 10000] [--runs 3] [--write]
 *
 * A reading is one metric value; each message carries one device's values at one instant.
 * Diagnostics: BENCH_SMAPS=1 prints where the gateway's resident memory was at its peak,
 * BENCH_MEM=1 traces heap and RSS during the drain, BENCH_NODE_ARGS sets the gateway's Node flags,
 * BENCH_BATCH, BENCH_BACKLOG_BATCH and BENCH_CONCURRENCY its InfluxDB batch sizes and writes in flight,
 * BENCH_RULE_STATE (`periodic` or `with-readings`) where its rule state is kept (ADR 0080).
 */
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startMosquitto } from '../test/fixtures/mosquitto.js';
import { startInfluxDB } from '../test/fixtures/influxdb.js';
import { spawnGateway } from '../test/fixtures/gateway.js';
import { waitFor } from '../test/fixtures/ports.js';
import { KINDS, payload } from './payloads.js';
import { backlog, gatewayNodeArgs, health, publish } from './backlog.js';
import {
  cpuSeconds,
  gaugeMb,
  histogram,
  median,
  peakRssMb,
  quantile,
  residentByMapping,
  threadCpuSeconds,
  writeSection,
} from './lib.js';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '200000' },
    devices: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '3' },
    'live-rate': { type: 'string', default: '10000' },
    'live-seconds': { type: 'string', default: '10' },
    write: { type: 'boolean', default: false },
  },
});
const N = Number(args.messages);
const DEVICES = Number(args.devices);
const RUNS = Number(args.runs);
const LIVE_RATE = Number(args['live-rate']);
const LIVE_SECONDS = Number(args['live-seconds']);

const NODE_ARGS = gatewayNodeArgs();

/** The floor's persistent session, subscribed to telemetry, so the broker queues for it while it is away. */
async function floorSession(url: string): Promise<void> {
  const c = await mqtt.connectAsync(url, { clientId: 'bench-floor', clean: false });
  await c.subscribeAsync('facility/+/+/+/telemetry', { qos: 1 });
  await c.endAsync();
}

function floorRun(url: string, n: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(import.meta.dirname, 'floor-subscriber.mjs'), url, String(n)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.once('exit', (code) =>
      code === 0
        ? resolve((JSON.parse(out) as { seconds: number }).seconds)
        : reject(new Error(`floor exited ${code}`)),
    );
  });
}

async function oneRun(run: number) {
  const mosq = await startMosquitto();
  const influx = await startInfluxDB();
  await influx.createDb('bench');
  const dataDir = mkdtempSync(join(tmpdir(), 'fgw-bench-'));
  const gwCfg = {
    dataDir,
    logLevel: 'warn',
    mqtt: { url: mosq.url, clientId: 'bench-gateway' },
    influx: {
      api: 'v1',
      url: influx.url,
      db: 'bench',
      ...(process.env.BENCH_BATCH ? { batchLines: Number(process.env.BENCH_BATCH) } : {}),
      ...(process.env.BENCH_CONCURRENCY ? { concurrency: Number(process.env.BENCH_CONCURRENCY) } : {}),
      ...(process.env.BENCH_BACKLOG_BATCH
        ? { backlogBatchLines: Number(process.env.BENCH_BACKLOG_BATCH) }
        : {}),
    },
    outbox: {
      commitThread: process.env.BENCH_COMMIT_THREAD !== 'false',
      synchronous: (process.env.BENCH_SYNC ?? 'full') as 'full' | 'normal',
    },
    // BENCH_RULE_STATE=periodic compares with rule state saved every minute instead of with the readings.
    ...(process.env.BENCH_RULE_STATE ? { alarms: { ruleState: process.env.BENCH_RULE_STATE } } : {}),
  };
  try {
    // Persistent sessions for both subscribers, so the broker queues the backlog for them.
    await floorSession(mosq.url);
    let gw = await spawnGateway(gwCfg, {}, NODE_ARGS, 'dist');
    await waitFor(
      async () => (await health(gw)).components.mqtt?.state === 'ok',
      20_000,
      'gateway subscribed',
    );
    await new Promise((r) => setTimeout(r, 300));
    await gw.stop();

    // Stamped so the backlog ends about now: after the drain no device looks offline to the
    // rules (a storm of offline alarms would be measured instead of ingest).
    const base = Date.now() - (Math.ceil(N / DEVICES) + 5) * 1000;
    const { topics, payloads, values } = backlog(N, DEVICES, base);
    const tp = performance.now();
    await publish(mosq.url, topics, payloads);
    const publishSec = (performance.now() - tp) / 1000;

    // Floor: bare mqtt.js, acks on receipt, parses and counts; a process of its own like the
    // gateway, so neither shares an event loop or a heap with the load generator. Measured again
    // after the gateway (below): the machine is shared, and its speed drifts within a run.
    const floorSec = await floorRun(mosq.url, N);

    // Gateway: drain into InfluxDB with the durable outbox, confirmed by InfluxDB.
    gw = await spawnGateway(gwCfg, {}, NODE_ARGS, 'dist');
    const pid = gw.proc.pid!;
    let g0 = 0;
    let cpu0 = 0;
    let dbCpu0 = 0;
    let brokerCpu0 = 0;
    for (;;) {
      const h = await health(gw);
      if ((h.components.ingest?.messages ?? 0) > 0) {
        g0 = performance.now();
        cpu0 = cpuSeconds(pid);
        dbCpu0 = cpuSeconds(influx.pid!);
        brokerCpu0 = cpuSeconds(mosq.pid!);
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const memTrace = process.env.BENCH_MEM === '1';
    let acceptedAt = 0;
    let smapsPeak = 0;
    let smapsAt = '';
    let maxPending = 0;
    for (;;) {
      if (process.env.BENCH_SMAPS) {
        const agg = residentByMapping(pid);
        const tot = Object.values(agg).reduce((a, b) => a + b, 0);
        if (tot > smapsPeak) {
          smapsPeak = tot;
          const mt = await (await fetch(`${gw.url}/metrics`)).text();
          smapsAt =
            Object.entries(agg)
              .filter(([, v]) => v > 2000)
              .map(([k, v]) => `${k}:${(v / 1024).toFixed(0)}`)
              .join(' ') +
            ` | heapTotal ${gaugeMb(mt, 'gateway_process_nodejs_heap_size_total_bytes')} used ${gaugeMb(mt, 'gateway_process_nodejs_heap_size_used_bytes')} external ${gaugeMb(mt, 'gateway_process_nodejs_external_memory_bytes')}`;
        }
      }
      if (memTrace) {
        const mt = await (await fetch(`${gw.url}/metrics`)).text();
        console.log(
          `mem rss ${gaugeMb(mt, 'gateway_process_process_resident_memory_bytes')} heapTotal ${gaugeMb(mt, 'gateway_process_nodejs_heap_size_total_bytes')} heapUsed ${gaugeMb(mt, 'gateway_process_nodejs_heap_size_used_bytes')} external ${gaugeMb(mt, 'gateway_process_nodejs_external_memory_bytes')}`,
        );
      }
      const h = await health(gw);
      if (!acceptedAt && (h.components.ingest?.messages ?? 0) >= N) acceptedAt = performance.now();
      maxPending = Math.max(maxPending, h.components.outbox?.pendingLines ?? 0);
      // A request retried after a timeout InfluxDB had in fact honoured counts its lines twice:
      // done means every line confirmed and nothing left in the outbox.
      if ((h.components.influx?.linesWritten ?? 0) >= N && h.components.outbox?.pendingLines === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const g1 = performance.now();
    const cpu1 = cpuSeconds(pid);
    if (process.env.BENCH_THREADS)
      console.log('threads (CPU s since start):', JSON.stringify(threadCpuSeconds(pid)));
    const dbCpu = (cpuSeconds(influx.pid!) - dbCpu0) / ((g1 - g0) / 1000);
    const brokerCpu = (cpuSeconds(mosq.pid!) - brokerCpu0) / ((g1 - g0) / 1000);
    const gwSec = (g1 - g0) / 1000;
    const ingestSec = ((acceptedAt || g1) - g0) / 1000;
    let inDb = 0;
    for (const m of ['gas_meter', 'water_meter', 'chlorination', 'env_probe']) {
      const field = {
        gas_meter: 'volume_m3',
        water_meter: 'volume_m3',
        chlorination: 'ph',
        env_probe: 'humidity_pct',
      }[m]!;
      const r = await influx.query(`SELECT count(${field}) FROM ${m}`, 'bench');
      inDb += Number(r[0]?.values[0]?.[1] ?? 0);
    }

    // Live: a steady stream stamped at publish time, for publish-to-InfluxDB latency, after a
    // pause that lets InfluxDB compact what the drain wrote (it stalls writes meanwhile).
    await new Promise((r) => setTimeout(r, 5000));
    const before = histogram(await (await fetch(`${gw.url}/metrics`)).text(), 'gateway_delivery_lag_seconds');
    const live = await mqtt.connectAsync(mosq.url, { clientId: `bench-live-${process.pid}` });
    const perTick = Math.max(1, Math.round(LIVE_RATE / 100));
    const tEnd = Date.now() + LIVE_SECONDS * 1000;
    // Each device goes on where its backlog ended.
    let i = N;
    let liveSent = 0;
    while (Date.now() < tEnd) {
      const t = Date.now();
      for (let k = 0; k < perTick; k++) {
        const d = (i + k) % DEVICES;
        const seq = Math.floor((i + k) / DEVICES);
        const kind = KINDS[d % 4]!;
        live.publish(`facility/site-${d % 100}/${kind}/dev-${d}/telemetry`, payload(kind, d, seq, t), {
          qos: 1,
        });
      }
      i += perTick;
      liveSent += perTick;
      await new Promise((r) => setTimeout(r, Math.max(0, 10 - (Date.now() - t))));
    }
    await live.endAsync();
    await new Promise((r) => setTimeout(r, 2500));
    const after = histogram(await (await fetch(`${gw.url}/metrics`)).text(), 'gateway_delivery_lag_seconds');
    const rss = peakRssMb(pid);
    if (smapsAt) console.log(`at peak ${(smapsPeak / 1024).toFixed(0)} MB: ${smapsAt}`);
    await gw.stop();
    // The floor again, with the gateway stopped and InfluxDB closed as they were idle or absent
    // the first time (InfluxDB would otherwise be compacting what the drain wrote).
    await influx.close();
    // The floor's session queued the live stream too: start it afresh, so it drains the backlog
    // alone, as the first time.
    const cleared = await mqtt.connectAsync(mosq.url, { clientId: 'bench-floor', clean: true });
    await cleared.endAsync();
    await floorSession(mosq.url);
    await publish(mosq.url, topics, payloads);
    const floorSec2 = await floorRun(mosq.url, N);
    if (process.env.BENCH_GCTRACE) {
      const lines = gw
        .output()
        .split('\n')
        .filter((l) => /Mark-Compact|Scavenge/.test(l));
      const mc = lines.filter((l) => l.includes('Mark-Compact'));
      console.log(`scavenges ${lines.length - mc.length}, mark-compacts ${mc.length}`);
      for (const l of mc) console.log(l.slice(0, 160));
    }

    /** The mean of the floor's rates before and after the gateway. */
    const floorMsgs = (N / floorSec + N / floorSec2) / 2;
    const r = {
      run,
      messages: N,
      readings: values,
      publishSec,
      floorMsgs,
      floorReadings: (floorMsgs * values) / N,
      floorBefore: N / floorSec,
      floorAfter: N / floorSec2,
      gwMsgs: N / gwSec,
      gwReadings: values / gwSec,
      gwCpu: (cpu1 - cpu0) / gwSec,
      ratio: N / gwSec / floorMsgs,
      /** CPU time per message: steadier than rates on a shared machine. */
      gwCpuUsPerMsg: ((cpu1 - cpu0) / N) * 1e6,
      ingestMsgs: N / ingestSec,
      dbCpu,
      brokerCpu,
      maxPending,
      rssMb: rss,
      inDb,
      liveRate: liveSent / LIVE_SECONDS,
      p50: quantile(after, before, 0.5) * 1000,
      p99: quantile(after, before, 0.99) * 1000,
    };
    console.log(
      `run ${run}: floor ${(r.floorReadings / 1000).toFixed(0)}k readings/s (${(r.floorMsgs / 1000).toFixed(1)}k msg/s: ${(r.floorBefore / 1000).toFixed(1)}k before, ${(r.floorAfter / 1000).toFixed(1)}k after the gateway); ` +
        `gateway→InfluxDB ${(r.gwReadings / 1000).toFixed(0)}k readings/s (${(r.gwMsgs / 1000).toFixed(1)}k msg/s), ` +
        `(all ${N} taken in, durable and acked at ${(r.ingestMsgs / 1000).toFixed(1)}k msg/s; at most ${maxPending} lines waiting for InfluxDB), ` +
        `CPU ${(r.gwCpu * 100).toFixed(0)}% = ${r.gwCpuUsPerMsg.toFixed(1)} µs/msg (InfluxDB ${(dbCpu * 100).toFixed(0)}%, Mosquitto ${(brokerCpu * 100).toFixed(0)}%), peak RSS ${r.rssMb.toFixed(0)} MB, in InfluxDB ${inDb}/${N}; ` +
        `live ${r.liveRate.toFixed(0)} msg/s: lag p50 ${r.p50.toFixed(0)} ms p99 ${r.p99.toFixed(0)} ms`,
    );
    return r;
  } finally {
    await mosq.stop();
    await influx.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const results: Array<Awaited<ReturnType<typeof oneRun>>> = [];
for (let i = 1; i <= RUNS; i++) results.push(await oneRun(i));
const med = (k: keyof (typeof results)[number]) => median(results.map((r) => r[k] as number));
const summary = {
  floor: med('floorReadings'),
  gw: med('gwReadings'),
  gwMsgs: med('gwMsgs'),
  floorMsgs: med('floorMsgs'),
  cpu: med('gwCpu'),
  rss: med('rssMb'),
  p50: med('p50'),
  p99: med('p99'),
  /** The median of each run's own ratio: a fast floor and a slow gateway run are not paired across runs. */
  ratio: med('ratio'),
  worstRatio: Math.min(...results.map((r) => r.ratio)),
  worstRss: Math.max(...results.map((r) => r.rssMb)),
};
console.log(
  `median of ${RUNS}: gateway ${(summary.gw / 1000).toFixed(0)}k readings/s = ${((summary.gw / summary.floor) * 100).toFixed(0)}% of the floor ` +
    `(${(summary.floor / 1000).toFixed(0)}k); ${(summary.gw / 120_000).toFixed(2)}× Node-RED's 120k; ` +
    `median of the runs' own ratios ${(summary.ratio * 100).toFixed(0)}%, worst run ${(summary.worstRatio * 100).toFixed(0)}% of its floor, highest peak RSS ${summary.worstRss.toFixed(0)} MB`,
);
if (args.write) {
  const rows = results
    .map(
      (r) =>
        `| ${r.run} | ${(r.floorReadings / 1000).toFixed(0)}k (${(r.floorMsgs / 1000).toFixed(1)}k msg/s: ${(r.floorBefore / 1000).toFixed(1)}k / ${(r.floorAfter / 1000).toFixed(1)}k) | ${(r.gwReadings / 1000).toFixed(0)}k (${(r.gwMsgs / 1000).toFixed(1)}k msg/s) | ${((r.gwReadings / r.floorReadings) * 100).toFixed(0)} % | ${(r.ingestMsgs / 1000).toFixed(1)}k msg/s | ${(r.gwCpu * 100).toFixed(0)} % (${r.gwCpuUsPerMsg.toFixed(1)} µs/msg) | ${(r.dbCpu * 100).toFixed(0)} % | ${r.rssMb.toFixed(0)} MB | ${r.inDb}/${r.messages} | ${r.p50.toFixed(0)} / ${r.p99.toFixed(0)} ms |`,
    )
    .join('\n');
  writeSection(
    'bench/RESULTS.md',
    'Ingest',
    `Command: \`npm run bench:ingest -- --messages ${N} --devices ${DEVICES} --runs ${RUNS} --write\`
(nproc ${cpus().length}, ${cpus()[0]?.model ?? ''}, Node ${process.version}, gateway flags \`${NODE_ARGS.join(' ')}\`; Mosquitto 2.0.11, InfluxDB 1.6.7, the gateway,
the load generator and the floor all share the machine; load average ${loadavg()[0]!.toFixed(1)} at the end), ${new Date().toISOString().slice(0, 10)}.

A backlog of ${N.toLocaleString('en')} messages from ${DEVICES.toLocaleString('en')} devices (all four kinds, full payloads;
${(results[0]!.readings / N).toFixed(2)} readings per message on average, a reading being one metric value, derived values included)
is queued by Mosquitto for two persistent sessions and drained by each in turn, each in a process of its own: the floor
(a bare mqtt.js subscriber that only parses the JSON and acks on receipt, \`bench/floor-subscriber.mjs\`) and the gateway
(held acks, durable SQLite outbox with \`synchronous=FULL\` group commit on its commit thread, InfluxDB v1 writes of
5,000 lines, or of every line waiting up to 50,000 while more wait, two in flight, uncompressed on loopback). The gateway's time runs from its first message to InfluxDB
confirming the last line. Then a live stream at ${LIVE_RATE.toLocaleString('en')} msg/s for ${LIVE_SECONDS} s, stamped at publish,
gives the publish-to-InfluxDB lag (from the gateway's \`gateway_delivery_lag_seconds\` histogram: first and last line of
each confirmed batch, so it leans towards the slow end). Last, with the gateway stopped and InfluxDB closed, the floor drains
the same backlog once more: the machine is shared and its speed drifts within a run, so a run's floor is the mean of its
rates before and after the gateway.

| run | floor readings/s (msg/s: before / after the gateway) | gateway → InfluxDB readings/s | of the floor | taken in (durable, acked) | gateway CPU (of one core, commit thread included) | InfluxDB CPU | gateway peak RSS | lines in InfluxDB | lag p50 / p99 |
|---|---|---|---|---|---|---|---|---|---|
${rows}

**Median: ${(summary.gw / 1000).toFixed(0)}k readings/s into InfluxDB (${(summary.gwMsgs / 1000).toFixed(1)}k messages/s), ${((summary.gw / summary.floor) * 100).toFixed(0)} % of the floor's ${(summary.floor / 1000).toFixed(0)}k; ${(summary.gw / 120_000).toFixed(2)}× the 120k readings/s of a Node-RED batch flow (mqtt in → join 1000 → influxdb batch, acks on receipt, no durability) on this machine; peak RSS ${summary.rss.toFixed(0)} MB with ${DEVICES.toLocaleString('en')} devices; lag p50 ${summary.p50.toFixed(0)} ms, p99 ${summary.p99.toFixed(0)} ms. Median of the runs' own ratios (each gateway run against the floor of the same run): ${(summary.ratio * 100).toFixed(0)} %. Worst of the ${RUNS} runs: ${(summary.worstRatio * 100).toFixed(0)} % of its floor; highest peak RSS ${summary.worstRss.toFixed(0)} MB.**

Targets: ≥ 50,000 readings/s sustained, ≥ half the floor, RSS < 300 MB with 10,000 devices; the aim is 1.5× Node-RED (180k readings/s) with durability on.`,
  );
}
process.exit(0);
