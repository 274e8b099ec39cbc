/**
 * OPC UA throughput: readings per second through ONE subscription with 1,000 monitored items.
 *
 * The simulators' OPC UA server runs in its own process with 125 chlorination tanks (8 variables
 * each = 1,000 nodes) and changes every variable every `--tick` ms. The gateway's OPC UA source
 * (adapters/opcua) subscribes to all 1,000 in one subscription (publishing interval 100 ms,
 * sampling on change, queue 100) and hands its readings to a counting sink, so the figure is the
 * OPC UA path alone: node-opcua's client, decoding, quality/timestamp mapping and grouping into
 * readings. One reading = one metric value. Median of `--runs` runs; `--write` records the
 * figures in bench/RESULTS.md under "## OPC UA".
 *
 * `--max-notifications` sets the server's cap of values per publish response (node-opcua's
 * default is 1,000); `--publishing` the subscription's publishing interval.
 *
 *   npm run bench:opcua -- [--runs 3] [--seconds 15] [--tick 20] [--publishing 100]
 *                          [--max-notifications 1000] [--write]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { OpcuaSource } from '../adapters/opcua/source.js';
import { opcuaEndpointSchema } from '../adapters/opcua/schema.js';
import type { Reading } from '../gateway/src/core/types.js';
import { freePort } from '../test/fixtures/ports.js';
import { fakeSourceContext } from '../test/fixtures/source-context.js';
import { cpuSeconds, median, writeSection } from './lib.js';

const SITE = 'bench';
const TANKS = 125;
const METRICS = [
  'free_chlorine_mgl',
  'total_chlorine_mgl',
  'ph',
  'turbidity_ntu',
  'orp_mv',
  'level_pct',
  'temperature_c',
  'dosing_pump_on',
] as const;

const { values: args } = parseArgs({
  options: {
    serve: { type: 'string' },
    tick: { type: 'string', default: '20' },
    publishing: { type: 'string', default: '100' },
    'max-notifications': { type: 'string', default: '1000' },
    runs: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '15' },
    write: { type: 'boolean', default: false },
  },
});

if (args.serve !== undefined)
  await serve(Number(args.serve), Number(args.tick), Number(args['max-notifications']));
else await main();

/** The server process: every variable of every tank changes each tick. */
async function serve(port: number, tickMs: number, maxNotifications: number): Promise<void> {
  const { startOpcuaServer } = await import('../simulators/opcua/server.js');
  const { Subscription } = await import('node-opcua');
  Subscription.maxNotificationPerPublishHighLimit = maxNotifications;
  const devices = Array.from({ length: TANKS }, (_, i) => ({
    id: `tank-${i}`,
    site: SITE,
    kind: 'chlorination' as const,
  }));
  const server = await startOpcuaServer({ port, devices });
  let round = 0;
  let changes = 0;
  const timer = setInterval(() => {
    round++;
    const ts = Date.now();
    for (let i = 0; i < TANKS; i++) {
      const x = (round % 100) / 1000;
      server.update({
        device: `tank-${i}`,
        site: SITE,
        ts,
        values: {
          free_chlorine_mgl: 0.5 + x,
          total_chlorine_mgl: 0.7 + x,
          ph: 7 + x,
          turbidity_ntu: 0.3 + x,
          orp_mv: 650 + x,
          level_pct: 80 - x,
          temperature_c: 18 + x,
          dosing_pump_on: round % 2 === 0,
        },
        bad: [],
        silent: false,
        faults: [],
      } as never);
      changes += METRICS.length;
    }
  }, tickMs);
  const report = setInterval(() => process.stdout.write(JSON.stringify({ changes }) + '\n'), 1000);
  process.stdout.write(JSON.stringify({ ready: server.endpointUrl }) + '\n');
  process.on('SIGTERM', () => {
    clearInterval(timer);
    clearInterval(report);
    void server.stop().then(() => process.exit(0));
  });
}

interface RunResult {
  readingsPerSec: number;
  offeredPerSec: number;
  clientCpu: number;
  serverCpu: number;
  monitoredItems: number;
  subscriptions: number;
}

async function once(seconds: number, tickMs: number, publishingMs: number, maxN: number): Promise<RunResult> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'bench/opcua.ts',
      '--serve',
      String(port),
      '--tick',
      String(tickMs),
      '--max-notifications',
      String(maxN),
    ],
    { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let changes = 0;
  const ready = new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const msg = JSON.parse(line) as { ready?: string; changes?: number };
          if (msg.ready) resolve(msg.ready);
          if (msg.changes !== undefined) changes = msg.changes;
        } catch {
          // node-opcua prints its own lines on stdout; only ours are JSON
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`OPC UA server exited ${code}`)));
  });
  const endpointUrl = await ready;
  const dir = mkdtempSync(join(tmpdir(), 'fgw-bench-opcua-'));
  let values = 0;
  const ctx = {
    ...fakeSourceContext({ dataDir: dir }),
    ingest(r: Reading): null {
      for (const _ in r.fields) values++;
      return null;
    },
    log: pino({ level: 'warn' }),
  };
  const nodes = Array.from({ length: TANKS }, (_, i) =>
    METRICS.map((metric) => ({
      nodeId: `ns=2;s=${SITE}.tank-${i}.${metric}`,
      site: SITE,
      device: `tank-${i}`,
      kind: 'chlorination',
      metric,
    })),
  ).flat();
  const source = new OpcuaSource(
    opcuaEndpointSchema.parse({
      name: 'bench',
      endpointUrl,
      subscription: {
        publishingIntervalMs: publishingMs,
        samplingIntervalMs: 0,
        queueSize: 100,
        batchSize: 500,
      },
      nodes,
    }),
  );
  try {
    await source.start(ctx);
    const deadline = Date.now() + 60_000;
    while (source.monitoredItemCount() < nodes.length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    if (source.monitoredItemCount() < nodes.length)
      throw new Error(`only ${source.monitoredItemCount()} of ${nodes.length} items monitored`);
    await new Promise((r) => setTimeout(r, 3000)); // warm-up
    const v0 = values;
    const c0 = changes;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const s0 = cpuSeconds(child.pid!);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const dt = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const h = source.health();
    return {
      readingsPerSec: (values - v0) / dt,
      offeredPerSec: (changes - c0) / dt,
      clientCpu: (cpu.user + cpu.system) / 1e6 / dt,
      serverCpu: (cpuSeconds(child.pid!) - s0) / dt,
      monitoredItems: Number(h.monitoredItems),
      subscriptions: Number(h.subscriptions),
    };
  } finally {
    await source.stop();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const runs = Number(args.runs);
  const seconds = Number(args.seconds);
  const tick = Number(args.tick);
  const publishing = Number(args.publishing);
  const maxN = Number(args['max-notifications']);
  const results: RunResult[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await once(seconds, tick, publishing, maxN);
    results.push(r);
    console.log(
      `run ${i + 1}: ${Math.round(r.readingsPerSec)} readings/s received ` +
        `(server changed ${Math.round(r.offeredPerSec)} values/s), ${r.subscriptions} subscription, ` +
        `${r.monitoredItems} items, client CPU ${(r.clientCpu * 100).toFixed(0)} %, ` +
        `server CPU ${(r.serverCpu * 100).toFixed(0)} %`,
    );
  }
  const med = median(results.map((r) => r.readingsPerSec));
  const load = loadavg().map((x) => x.toFixed(2));
  console.log(`median ${Math.round(med)} readings/s; load average ${load.join(' ')}; nproc ${cpus().length}`);
  if (!args.write) return;
  const rows = results
    .map(
      (r, i) =>
        `| ${i + 1} | ${Math.round(r.readingsPerSec).toLocaleString('en')} | ${Math.round(r.offeredPerSec).toLocaleString('en')} | ${(r.clientCpu * 100).toFixed(0)} % | ${(r.serverCpu * 100).toFixed(0)} % | ${r.subscriptions} / ${r.monitoredItems} |`,
    )
    .join('\n');
  writeSection(
    join(import.meta.dirname, 'RESULTS.md'),
    'OPC UA',
    `Command: \`npm run bench:opcua -- --runs ${runs} --seconds ${seconds} --tick ${tick} --publishing ${publishing} --max-notifications ${maxN} --write\`
(nproc ${cpus().length}, ${cpus()[0]?.model ?? '?'}, Node ${process.version}; load average ${load.join(' / ')} at the end;
the server process, the client and other work on the machine share the cores), ${new Date().toISOString().slice(0, 10)}.

The simulators' OPC UA server (own process) holds 125 chlorination tanks × 8 variables = 1,000 nodes and
changes every one of them every ${tick} ms. The gateway's OPC UA source subscribes to all 1,000 in one
subscription (publishing interval ${publishing} ms, sampling on change, queue size 100; the server sends at
most ${maxN} values per publish response) and hands the readings to a counting sink: the OPC UA path alone, without the outbox and InfluxDB. ${seconds} s measured after a 3 s warm-up.

| run | readings/s received | values/s changed by the server | client CPU (of one core) | server CPU | subscriptions / items |
|---|---|---|---|---|---|
${rows}

**Median: ${Math.round(med).toLocaleString('en')} readings/s through one subscription with 1,000 monitored items.**`,
  );
}
