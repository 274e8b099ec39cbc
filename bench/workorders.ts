/**
 * Work-order benchmark: alarm-to-ticket latency (an alarm raised and committed → the ticket it
 * creates committed, the gateway's `gateway_alarm_to_ticket_seconds` histogram) while the gateway
 * ingests a steady stream of the ingest benchmark's payloads from 10,000 devices into a real
 * InfluxDB 1.6.7, on a real Mosquitto.
 *
 *   npm run bench:workorders -- [--rate 10000] [--seconds 40] [--alarms 200] [--runs 3] [--busy] [--write]
 *
 * `--busy` keeps one core busy with another process (a child spinning) for each run, so the case of
 * a machine with other work on it is measured on purpose rather than by chance.
 *
 * Each alarm is a water leak on a new server-room probe at a site of its own (safety class: always a
 * ticket; one site each, or alarm grouping would join them into one incident and one ticket).
 */
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startMosquitto } from '../test/fixtures/mosquitto.js';
import { startInfluxDB } from '../test/fixtures/influxdb.js';
import { spawnGateway, type GatewayProcess } from '../test/fixtures/gateway.js';
import { waitFor } from '../test/fixtures/ports.js';
import { histogram, median, quantile, writeSection } from './lib.js';
import { KINDS, payload } from './payloads.js';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '40' },
    alarms: { type: 'string', default: '200' },
    devices: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '3' },
    busy: { type: 'boolean', default: false },
    write: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(`npm run bench:workorders -- [options]

Alarm-to-ticket latency (p50/p99 of gateway_alarm_to_ticket_seconds) while the gateway ingests a steady
stream into a real InfluxDB 1.6.7 on a real Mosquitto (the compiled gateway, as deployed).

  --rate N      messages per second offered (default 10000)
  --seconds N   seconds of load per run (default 40)
  --alarms N    water-leak alarms raised per run, each a safety ticket (default 200)
  --devices N   devices the load is spread over (default 10000)
  --runs N      runs; the median of their p99s is reported (default 3)
  --busy        keep one core busy with another process during each run
  --write       write the results into bench/RESULTS.md
  -h, --help    this text
`);
  process.exit(0);
}
const BUSY = args.busy;

/** A process of its own that spins on one core until killed (`--busy`). */
function spinner(): ChildProcess {
  return spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
}
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);
const ALARMS = Number(args.alarms);
const DEVICES = Number(args.devices);
const RUNS = Number(args.runs);

interface Health {
  components: {
    ingest?: { messages: number; accepted: number };
    workorders?: { created: number };
    mqtt?: { state: string };
  };
}
const health = async (g: GatewayProcess): Promise<Health> =>
  (await fetch(`${g.url}/api/health`)).json() as Promise<Health>;
const scrape = async (g: GatewayProcess) =>
  histogram(await (await fetch(`${g.url}/metrics`)).text(), 'gateway_alarm_to_ticket_seconds');

async function oneRun(run: number) {
  const busy = BUSY ? spinner() : undefined;
  try {
    return await measure(run);
  } finally {
    busy?.kill('SIGKILL');
  }
}

async function measure(run: number) {
  const mosq = await startMosquitto();
  const influx = await startInfluxDB();
  await influx.createDb('bench');
  const dataDir = mkdtempSync(join(tmpdir(), 'fgw-bench-wo-'));
  let gw: GatewayProcess | undefined;
  try {
    const g = await spawnGateway(
      {
        dataDir,
        logLevel: 'warn',
        mqtt: { url: mosq.url, clientId: 'bench-gateway' },
        influx: { api: 'v1', url: influx.url, db: 'bench' },
      },
      {},
      ['--max-old-space-size=256'],
      // The compiled gateway, as deployed (`npm run build` runs first).
      'dist',
    );
    gw = g;
    await waitFor(
      async () => (await health(g)).components.mqtt?.state === 'ok',
      30_000,
      'gateway subscribed',
    );
    const pub = await mqtt.connectAsync(mosq.url, { clientId: `bench-wo-${process.pid}` });
    const perTick = Math.max(1, Math.round(RATE / 100));
    // One pass over the devices first, so the rules know them all before anything is timed.
    for (let d = 0; d < DEVICES; d++) {
      const kind = KINDS[d % 4]!;
      pub.publish(`facility/site-${d % 100}/${kind}/dev-${d}/telemetry`, payload(kind, d, 0, Date.now()), {
        qos: 1,
      });
      if (d % 1000 === 999) await new Promise((r) => setTimeout(r, 100));
    }
    await waitFor(
      async () => ((await health(g)).components.ingest?.accepted ?? 0) >= DEVICES,
      60_000,
      'warm-up',
    );
    const before = await scrape(g);
    const created0 = (await health(g)).components.workorders?.created ?? 0;
    const acc0 = (await health(g)).components.ingest?.accepted ?? 0;
    const alarmEveryMs = (SECONDS * 1000) / ALARMS;
    const t0 = Date.now();
    const tEnd = t0 + SECONDS * 1000;
    let i = DEVICES;
    let sent = 0;
    let leaks = 0;
    while (Date.now() < tEnd) {
      const t = Date.now();
      for (let k = 0; k < perTick; k++) {
        const d = (i + k) % DEVICES;
        const kind = KINDS[d % 4]!;
        pub.publish(
          `facility/site-${d % 100}/${kind}/dev-${d}/telemetry`,
          payload(kind, d, Math.floor((i + k) / DEVICES), t),
          { qos: 1 },
        );
      }
      i += perTick;
      sent += perTick;
      while (leaks < ALARMS && t - t0 >= leaks * alarmEveryMs) {
        pub.publish(
          `facility/leak-${run}-${leaks}/env-probe/probe/telemetry`,
          `{"ts":${t},"temperature_c":22,"humidity_pct":45,"smoke":false,"water_leak":true,"door_open":false}`,
          { qos: 1 },
        );
        leaks++;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 10 - (Date.now() - t))));
    }
    const loadSec = (Date.now() - t0) / 1000;
    await pub.endAsync();
    // The broker may still hold part of the load when publishing ends: wait until the gateway has it all.
    await waitFor(
      async () => {
        const h = (await health(g)).components;
        return (h.workorders?.created ?? 0) - created0 >= leaks;
      },
      120_000,
      'every leak ticket',
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; health: ${JSON.stringify((await health(g)).components)}`);
    });
    const after = await scrape(g);
    const acc1 = (await health(g)).components.ingest?.accepted ?? 0;
    const observed = (after[after.length - 1]?.[1] ?? 0) - (before[before.length - 1]?.[1] ?? 0);
    const r = {
      run,
      sentRate: sent / loadSec,
      acceptedRate: (acc1 - acc0) / loadSec,
      tickets: observed,
      p50: quantile(after, before, 0.5) * 1000,
      p99: quantile(after, before, 0.99) * 1000,
      load: loadavg()[0]!,
    };
    console.log(
      `run ${run}: load ${r.sentRate.toFixed(0)} msg/s sent, ${r.acceptedRate.toFixed(0)} msg/s accepted; ` +
        `${r.tickets} tickets; alarm→ticket p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms; load avg ${r.load.toFixed(1)}`,
    );
    return r;
  } finally {
    await gw?.stop();
    await mosq.stop();
    await influx.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const results: Array<Awaited<ReturnType<typeof oneRun>>> = [];
for (let k = 1; k <= RUNS; k++) results.push(await oneRun(k));
const med = (key: 'p50' | 'p99' | 'acceptedRate') => median(results.map((r) => r[key]));
console.log(
  `median of ${RUNS}${BUSY ? ' (--busy)' : ''}: alarm→ticket p50 ${med('p50').toFixed(2)} ms, p99 ${med('p99').toFixed(2)} ms ` +
    `under ${med('acceptedRate').toFixed(0)} msg/s ingest`,
);
if (args.write) {
  const rows = results
    .map(
      (r) =>
        `| ${r.run} | ${r.sentRate.toFixed(0)} | ${r.acceptedRate.toFixed(0)} | ${r.tickets} | ${r.p50.toFixed(2)} ms | ${r.p99.toFixed(2)} ms | ${r.load.toFixed(1)} |`,
    )
    .join('\n');
  writeSection(
    'bench/RESULTS.md',
    BUSY ? 'Work orders, one core busy' : 'Work orders',
    `Command: \`npm run bench:workorders -- --rate ${RATE} --seconds ${SECONDS} --alarms ${ALARMS} --runs ${RUNS}${BUSY ? ' --busy' : ''} --write\`${BUSY ? '\n(`--busy`: a child process spins on one core for the whole of each run.)' : ''}
(nproc ${cpus().length}, Node ${process.version}; Mosquitto 2.0.11, InfluxDB 1.6.7, the compiled gateway and
the load generator share the machine, with other work running on it), ${new Date().toISOString().slice(0, 10)}.

While the ingest benchmark's payloads stream in from ${DEVICES.toLocaleString('en')} devices at about ${RATE.toLocaleString('en')} msg/s
(written to InfluxDB through the durable outbox; the payloads do raise alarms of their own: in a trial run about
half the 10,000 devices had one active alarm, none of which made a ticket by the default policy), ${ALARMS} server-room probes each report a water leak,
spread over ${SECONDS} s: a safety alarm, hence a critical ticket. Latency is the gateway's
\`gateway_alarm_to_ticket_seconds\` histogram: from the alarm's \`raise\` event (the alarm committed to alarms.db) to the
ticket's commit in workorders.db; p50/p99 are interpolated within its buckets (0.5, 1, 2, 5, 10, 20, 50, 100 ms, …).

| run | load sent msg/s | accepted msg/s | tickets timed | alarm→ticket p50 | p99 | load average (1 min) at the end |
|---|---|---|---|---|---|---|
${rows}

**Median of ${RUNS}: p50 ${med('p50').toFixed(2)} ms, p99 ${med('p99').toFixed(2)} ms under ${med('acceptedRate').toFixed(0)} msg/s of ingest.**`,
  );
}
process.exit(0);
