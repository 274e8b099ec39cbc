/**
 * The backlog shared by the drain benchmarks (bench:ingest, bench:cluster): N messages from D
 * devices of all four kinds, published at QoS 1 while the gateways are down or paused, and the
 * health fields that tell when every line is in InfluxDB.
 */
import mqtt from 'mqtt';
import type { GatewayProcess } from '../test/fixtures/gateway.js';
import { KINDS, payload } from './payloads.js';

/** Values per message as the gateway writes them (derived fields included). */
const VALUES: Record<(typeof KINDS)[number], number> = {
  'gas-meter': 8,
  'water-meter': 8,
  chlorination: 8,
  'env-probe': 6,
};

/** The gateway's heap flags, as `npm run gateway` sets them (override the flags with BENCH_NODE_ARGS). */
export function gatewayNodeArgs(): string[] {
  return (process.env.BENCH_NODE_ARGS ?? '--max-old-space-size=256 --initial-old-space-size=128')
    .split(' ')
    .filter(Boolean);
}

/**
 * N messages round-robin over D devices (`facility/site-<d % 100>/<kind>/dev-<d>/telemetry`), each
 * device's stamped one second apart from `base`; `values` counts the readings the gateway writes.
 */
export function backlog(
  n: number,
  devices: number,
  base: number,
): { topics: string[]; payloads: Buffer[]; values: number } {
  const topics: string[] = [];
  const payloads: Buffer[] = [];
  let values = 0;
  for (let i = 0; i < n; i++) {
    const d = i % devices;
    const seq = Math.floor(i / devices);
    const kind = KINDS[d % 4]!;
    topics.push(`facility/site-${d % 100}/${kind}/dev-${d}/telemetry`);
    payloads.push(Buffer.from(payload(kind, d, seq, base + seq * 1000 + (d % 1000))));
    values += VALUES[kind];
  }
  // The first reading of each meter has no consumption yet.
  values -= Math.min(n, devices) / 2;
  return { topics, payloads, values };
}

/** Publishes at QoS 1 over two connections, 1,000 in flight on each. */
export async function publish(url: string, topics: string[], payloads: Buffer[]): Promise<void> {
  const clients = await Promise.all(
    [0, 1].map((k) => mqtt.connectAsync(url, { clientId: `bench-pub-${k}-${process.pid}` })),
  );
  await Promise.all(
    clients.map(async (c, k) => {
      const W = 1000;
      for (let i = k * W; i < topics.length; i += 2 * W) {
        const end = Math.min(i + W, topics.length);
        const ps: Promise<unknown>[] = [];
        for (let j = i; j < end; j++) ps.push(c.publishAsync(topics[j]!, payloads[j]!, { qos: 1 }));
        await Promise.all(ps);
      }
    }),
  );
  await Promise.all(clients.map((c) => c.endAsync()));
}

export interface Health {
  components: {
    ingest?: { messages: number; accepted: number };
    influx?: { linesWritten: number };
    outbox?: { pendingLines: number };
    mqtt?: { state: string };
  };
}
export const health = async (g: GatewayProcess): Promise<Health> =>
  (await fetch(`${g.url}/api/health`)).json() as Promise<Health>;
