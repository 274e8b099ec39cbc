/**
 * Modbus throughput: values per second through ONE gateway polling 100 simulated devices × 20
 * registers every second, with the gateway's CPU and resident memory.
 *
 * The simulators run in their own process (`npm run simulate`'s library: 100 chlorination tanks,
 * their physics reporting every second, served over Modbus TCP, one unit id per tank). The gateway
 * (the real Gateway: ingest, registry, rules, outbox; InfluxDB off, so the figure is the Modbus
 * path and ingest, not the database) polls every tank each second: the shipped example chlorine
 * analyser profile (input registers 0-9: 2 float32, 5 scaled integers, a status bit) and the same
 * 10 registers read again as holding registers (raw uint16): 20 registers, 18 values, 2 requests
 * per tank and second. Bounded: `--seconds` (default 30) after a 5 s warm-up.
 *
 *   npm run bench:modbus -- [--seconds 30] [--devices 100] [--in-flight 4] [--write]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { configSchema } from '../gateway/src/config/schema.js';
import { Gateway } from '../gateway/src/gateway.js';
import { freePort } from '../test/fixtures/ports.js';
import { cpuSeconds, writeSection } from './lib.js';
import { chlorineAnalyser } from '../adapters/modbus/profiles/chlorine-analyser.js';

const { values: args } = parseArgs({
  options: {
    serve: { type: 'string' },
    devices: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '30' },
    'in-flight': { type: 'string', default: '4' },
    write: { type: 'boolean', default: false },
  },
});
const DEVICES = Number(args.devices);
const SITE = 'bench';

if (args.serve !== undefined) await serve(Number(args.serve));
else await main();

/** The simulator process. */
async function serve(port: number): Promise<void> {
  const { startSimulation } = await import('../simulators/index.js');
  const sim = await startSimulation({
    brokerUrl: null,
    modbusPort: port,
    intervalMs: 1000,
    scenario: {
      name: 'bench-modbus',
      sites: [
        {
          id: SITE,
          devices: Array.from({ length: DEVICES }, (_, i) => ({ id: `tank-${i}`, kind: 'chlorination' })),
        },
      ],
    },
    logger: pino({ level: 'warn' }),
  });
  process.stdout.write(JSON.stringify({ ready: sim.modbusUnits.length }) + '\n');
  process.on('SIGTERM', () => void sim.stop().then(() => process.exit(0)));
}

async function main(): Promise<void> {
  const seconds = Number(args.seconds);
  const inFlight = Number(args['in-flight']);
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/modbus.ts', '--serve', String(port), '--devices', String(DEVICES)],
    {
      cwd: join(import.meta.dirname, '..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('"ready"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`simulator exited ${code}`)));
  });
  const dataDir = mkdtempSync(join(tmpdir(), 'fgw-bench-modbus-'));
  const raw = Array.from({ length: 10 }, (_, i) => ({
    metric: `raw_${i}`,
    table: 'holding',
    address: i,
    type: 'uint16',
  }));
  const cfg = configSchema.parse({
    dataDir,
    logLevel: 'warn',
    http: { host: '127.0.0.1', port: 0, adminToken: 'bench-admin-token' },
    broker: { host: '127.0.0.1', port: 0 },
    influx: { enabled: false },
    modbus: {
      connections: [{ name: 'sim', transport: 'tcp', host: '127.0.0.1', port, maxInFlight: inFlight }],
      groups: { second: { intervalMs: 1000 } },
      profiles: {
        'bench-tank': {
          // The shipped example map the simulators serve, and the same registers again as raw words.
          registers: [...chlorineAnalyser.registers, ...raw],
        },
      },
      devices: Array.from({ length: DEVICES }, (_, i) => ({
        id: `tank-${i}`,
        site: SITE,
        kind: 'chlorination',
        connection: 'sim',
        group: 'second',
        unitId: i + 1,
        profile: 'bench-tank',
      })),
    },
  });
  const gw = new Gateway(cfg, pino({ level: 'warn' }));
  const values = async (): Promise<number> => {
    const m = await gw.metrics.getSingleMetric('gateway_modbus_values_total')?.get();
    return m?.values.reduce((a, v) => a + v.value, 0) ?? 0;
  };
  const requests = async (result: string): Promise<number> => {
    const m = await gw.metrics.getSingleMetric('gateway_modbus_requests_total')?.get();
    return m?.values.filter((v) => v.labels.result === result).reduce((a, v) => a + v.value, 0) ?? 0;
  };
  try {
    await gw.start();
    await new Promise((r) => setTimeout(r, 5000)); // warm-up: connection, first rounds, JIT
    const v0 = await values();
    const r0 = await requests('ok');
    const f0 = (await requests('timeout')) + (await requests('error')) + (await requests('exception'));
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const s0 = cpuSeconds(child.pid!);
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 500);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    clearInterval(sampler);
    const dt = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const valuesPerSec = ((await values()) - v0) / dt;
    const requestsPerSec = ((await requests('ok')) - r0) / dt;
    const failed =
      (await requests('timeout')) + (await requests('error')) + (await requests('exception')) - f0;
    const gwCpu = (cpu.user + cpu.system) / 1e6 / dt;
    const simCpu = (cpuSeconds(child.pid!) - s0) / dt;
    const rssMb = peakRss / 1024 / 1024;
    const load = loadavg().map((x) => x.toFixed(2));
    const offered = DEVICES * 18;
    console.log(
      `${Math.round(valuesPerSec)} values/s (offered ${offered}/s: ${DEVICES} devices × 18 values from 20 registers at 1 s), ` +
        `${requestsPerSec.toFixed(0)} requests/s ok, ${failed} failed; gateway CPU ${(gwCpu * 100).toFixed(1)} % of one core, ` +
        `peak RSS ${rssMb.toFixed(0)} MB; simulator CPU ${(simCpu * 100).toFixed(1)} %; load ${load.join(' ')}; nproc ${cpus().length}`,
    );
    if (args.write)
      writeSection(
        join(import.meta.dirname, 'RESULTS.md'),
        'Modbus',
        `Command: \`npm run bench:modbus -- --seconds ${seconds} --devices ${DEVICES} --in-flight ${inFlight} --write\`
(nproc ${cpus().length}, ${cpus()[0]?.model ?? '?'}, Node ${process.version}; load average ${load.join(' / ')} at the end;
other work on the machine shares the cores), ${new Date().toISOString().slice(0, 10)}.

The simulators (own process) serve ${DEVICES} chlorination tanks over Modbus TCP, one unit id each, physics
reporting every second. One gateway (ingest, registry, rules and outbox; InfluxDB off) polls every tank each
second over one TCP connection with ${inFlight} requests in flight: 20 registers per tank (the example chlorine
analyser map in input registers 0-9 and the same registers as raw holding registers), 2 block reads, 18 values.
${seconds} s measured after a 5 s warm-up.

| values/s | offered values/s | requests/s | failed requests | gateway CPU (of one core) | gateway peak RSS | simulator CPU |
|---|---|---|---|---|---|---|
| ${Math.round(valuesPerSec).toLocaleString('en')} | ${offered.toLocaleString('en')} | ${requestsPerSec.toFixed(0)} | ${failed} | ${(gwCpu * 100).toFixed(1)} % | ${rssMb.toFixed(0)} MB | ${(simCpu * 100).toFixed(1)} % |

For scale: Neuron reports 100,000 Modbus values/s at 30 % of 4 cores against its own simulator; this run
polls at a fixed rate (1 s), so values/s is set by the device count, and the CPU figure is the cost of it.`,
      );
  } finally {
    await gw.stop();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}
