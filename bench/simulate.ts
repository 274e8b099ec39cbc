/**
 * Simulator scale benchmark: 10,000 devices from one process publishing to a real Mosquitto
 * (started by the test fixture). Every device reports once a second (interval override), so
 * the schedule asks for 10,000 msg/s; we report what was achieved and whether it kept up.
 * Usage: npm run bench:simulate -- [devices=10000] [seconds=30] [qos=1]
 *
 * A subscriber counts what the broker delivered, to prove the messages went through it and not
 * just into a socket buffer. It runs in a child process (this same file with `--subscriber`) so
 * its parsing does not share the simulator's event loop: the claim is about the simulator.
 */
import { fork } from 'node:child_process';
import { connect } from 'node:net';
import { cpus, loadavg } from 'node:os';
import mqttPacket from 'mqtt-packet';
import { pino } from 'pino';
import { startSimulation } from '../simulators/index.js';
import { startMosquitto } from '../test/fixtures/mosquitto.js';

if (process.argv[2] === '--subscriber') await subscriber(process.argv[3] as string);

/** Counts PUBLISH packets on `facility/#` at QoS 0, walking fixed headers only (cheap at 10k/s). */
async function subscriber(url: string): Promise<never> {
  const u = new URL(url);
  const sock = connect({ host: u.hostname, port: Number(u.port) });
  let received = 0;
  let left: Buffer | undefined;
  sock.on('connect', () => {
    sock.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId: 'bench-sub',
        clean: true,
        keepalive: 0,
      }),
    );
    sock.write(
      mqttPacket.generate({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [{ topic: 'facility/#', qos: 0 }],
      }),
    );
  });
  sock.on('data', (chunk: Buffer) => {
    const buf = left ? Buffer.concat([left, chunk]) : chunk;
    left = undefined;
    let off = 0;
    for (;;) {
      let rl = 0;
      let mult = 1;
      let i = off + 1;
      let done = false;
      while (i < buf.length && i - off <= 4) {
        const b = buf[i++] as number;
        rl += (b & 0x7f) * mult;
        mult *= 128;
        if ((b & 0x80) === 0) {
          done = true;
          break;
        }
      }
      if (!done || i + rl > buf.length) break;
      if ((buf[off] as number) >> 4 === 3) received++;
      else if ((buf[off] as number) >> 4 === 9) process.send?.({ subscribed: true });
      off = i + rl;
    }
    if (off < buf.length) left = Buffer.from(buf.subarray(off));
  });
  sock.on('close', () => process.exit(0));
  process.on('message', () => process.send?.({ received }));
  return new Promise<never>(() => undefined);
}

const devices = Number(process.argv[2] ?? 10_000);
const seconds = Math.min(55, Number(process.argv[3] ?? 30));
const qos = Number(process.argv[4] ?? 1) as 0 | 1 | 2;

const broker = await startMosquitto();
const child = fork(process.argv[1] as string, ['--subscriber', broker.url], { execArgv: process.execArgv });
const replies: ((n: number) => void)[] = [];
await new Promise<void>((resolve, reject) => {
  child.once('error', reject);
  child.on('message', (m: { subscribed?: boolean; received?: number }) => {
    if (m.subscribed) resolve();
    if (m.received !== undefined) replies.shift()?.(m.received);
  });
});
const receivedCount = (): Promise<number> =>
  new Promise<number>((resolve) => {
    replies.push(resolve);
    child.send('count');
  });

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
const r0 = await receivedCount();
const load0 = loadavg()[0] as number;
const elu0 = performance.eventLoopUtilization();
const t0 = performance.now();
let maxLag = 0;
let behindSamples = 0;
let maxOutstanding = s0.mqtt?.outstanding ?? 0;
while (performance.now() - t0 < seconds * 1000) {
  await new Promise((r) => setTimeout(r, 500));
  const s = sim.stats();
  maxLag = Math.max(maxLag, s.lagMs);
  if (s.behind) behindSamples++;
  maxOutstanding = Math.max(maxOutstanding, s.mqtt?.outstanding ?? 0);
}
const s1 = sim.stats();
// Share of the window the simulator's event loop was busy: the headroom left at this rate.
const elu = performance.eventLoopUtilization(elu0).utilization;
const r1 = await receivedCount();
const elapsed = (performance.now() - t0) / 1000;
// Acknowledged by the broker (QoS ≥ 1) or written (QoS 0) in the window.
const published = ((s1.mqtt?.completed ?? 0) - (s0.mqtt?.completed ?? 0)) / elapsed;
const generated = (s1.generated - s0.generated) / elapsed;

const scheduled = s1.scheduledPerSec;
await sim.stop();
const recv = (r1 - r0) / elapsed;
child.kill();
await broker.stop();

const kept = generated >= scheduled * 0.98 && behindSamples === 0;
const result = {
  devices,
  seconds: +elapsed.toFixed(1),
  qos,
  cpus: cpus().length,
  loadAvg1m: [+load0.toFixed(2), +(loadavg()[0] as number).toFixed(2)],
  scheduledPerSec: Math.round(scheduled),
  generatedPerSec: Math.round(generated),
  publishedAckedPerSec: Math.round(published),
  receivedBySubscriberPerSec: Math.round(recv),
  maxLagMs: Math.round(maxLag),
  // Handed to the broker and not yet acknowledged (sampled every 0.5 s; the cap is 20,000).
  outstandingAtStart: s0.mqtt?.outstanding ?? 0,
  maxOutstanding,
  eventLoopBusyPct: Math.round(elu * 100),
  keptSchedule: kept,
};
console.log(JSON.stringify(result));
process.exit(kept ? 0 : 1);
