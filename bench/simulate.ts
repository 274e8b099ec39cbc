/**
 * Simulator scale benchmark: 10,000 devices from one process publishing to a real Mosquitto
 * (started by the test fixture). Every device reports once a second (interval override), so
 * the schedule asks for 10,000 msg/s; we report what was achieved and whether it kept up.
 * Usage: npm run bench:simulate -- [devices=10000] [seconds=30] [qos=1]
 */
import mqtt from 'mqtt';
import { cpus } from 'node:os';
import { pino } from 'pino';
import { startSimulation } from '../simulators/index.js';
import { startMosquitto } from '../test/fixtures/mosquitto.js';

const devices = Number(process.argv[2] ?? 10_000);
const seconds = Math.min(55, Number(process.argv[3] ?? 30));
const qos = Number(process.argv[4] ?? 1) as 0 | 1 | 2;

const broker = await startMosquitto();
// A subscriber proves the messages went through the broker, not just into a socket buffer.
const sub = await mqtt.connectAsync(broker.url, { clientId: 'bench-sub' });
let received = 0;
sub.on('message', () => received++);
await sub.subscribeAsync('facility/#', { qos: 0 });

const sim = await startSimulation({
  brokerUrl: broker.url,
  devices,
  intervalMs: 1000,
  qos,
  seed: 1,
  logger: pino({ level: 'warn' }),
});
// Skip the first interval: first reports are spread over it, so it ramps up from zero.
await new Promise((r) => setTimeout(r, 2000));
const s0 = sim.stats();
const r0 = received;
const t0 = performance.now();
let maxLag = 0;
let behindSamples = 0;
while (performance.now() - t0 < seconds * 1000) {
  await new Promise((r) => setTimeout(r, 500));
  const s = sim.stats();
  maxLag = Math.max(maxLag, s.lagMs);
  if (s.behind) behindSamples++;
}
const s1 = sim.stats();
const elapsed = (performance.now() - t0) / 1000;
const published = ((s1.mqtt?.completed ?? 0) - (s0.mqtt?.completed ?? 0)) / elapsed;
const generated = (s1.generated - s0.generated) / elapsed;
const recv = (received - r0) / elapsed;
const scheduled = s1.scheduledPerSec;
await sim.stop();
await sub.endAsync();
await broker.stop();

const kept = generated >= scheduled * 0.98 && behindSamples === 0;
const result = {
  devices,
  seconds: +elapsed.toFixed(1),
  qos,
  cpus: cpus().length,
  scheduledPerSec: Math.round(scheduled),
  generatedPerSec: Math.round(generated),
  publishedAckedPerSec: Math.round(published),
  receivedBySubscriberPerSec: Math.round(recv),
  maxLagMs: Math.round(maxLag),
  keptSchedule: kept,
};
console.log(JSON.stringify(result));
process.exit(kept ? 0 : 1);
