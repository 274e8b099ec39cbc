/**
 * InfluxDB 1.6.7 alone: how fast it takes 200,000 lines of the ingest benchmark's shape (the
 * same payloads, as the gateway writes them) and the CPU it spends per line, with the machine to
 * itself. What the ingest benchmark's end-to-end figure is measured against.
 *
 *   npx tsx bench/influxdb-alone.ts [lines per request = 5000] [requests in flight = 2]
 */
import { startInfluxDB } from '../test/fixtures/influxdb.js';
import { cpuSeconds } from './lib.js';
import { KINDS, payload } from './payloads.js';

const BATCH = Number(process.argv[2] ?? 5000);
const CONCURRENCY = Number(process.argv[3] ?? 2);
const N = 200_000;
const DEVICES = 10_000;

const influx = await startInfluxDB();
try {
  await influx.createDb('bench');
  const base = Date.now() - 300_000;
  const lines: string[] = [];
  for (let i = 0; i < N; i++) {
    const d = i % DEVICES;
    const seq = Math.floor(i / DEVICES);
    const kind = KINDS[d % 4]!;
    const o = JSON.parse(payload(kind, d, seq, base + seq * 1000 + (d % 1000))) as Record<
      string,
      number | boolean
    >;
    const ts = o.ts;
    delete o.ts;
    const fields = Object.entries(o)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    lines.push(`${kind.replace('-', '_')},device=dev-${d},site=site-${d % 100} ${fields} ${ts}\n`);
  }
  const bodies: Buffer[] = [];
  for (let i = 0; i < N; i += BATCH) bodies.push(Buffer.from(lines.slice(i, i + BATCH).join('')));
  const pid = influx.pid!;
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const res = await fetch(`${influx.url}/write?db=bench&precision=ms`, {
          method: 'POST',
          body: bodies[next++]!,
        });
        if (res.status !== 204) throw new Error(`InfluxDB answered ${res.status}: ${await res.text()}`);
      }
    }),
  );
  const sec = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  console.log(
    `${BATCH} lines per request, ${CONCURRENCY} in flight: ${(N / sec / 1000).toFixed(1)}k lines/s, ` +
      `influxd ${((cpu / sec) * 100).toFixed(0)} % CPU, ${((cpu / N) * 1e6).toFixed(1)} µs of CPU per line`,
  );
} finally {
  await influx.close();
}
process.exit(0);
