import { readFileSync, rmSync } from 'node:fs';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { SimMessage } from '../../../simulators/engine/engine.js';
import { MqttPublisher } from '../../../simulators/transport/mqtt-publisher.js';
import { startMosquitto, type Mosquitto } from '../../fixtures/mosquitto.js';
import { waitFor } from '../../fixtures/ports.js';
import { selfSignedCert } from '../../fixtures/tls.js';

const logger = pino({ level: 'silent' });

function msg(i: number, qos: 0 | 1 | 2, device = `wm-${i}`): SimMessage {
  return {
    slot: i,
    device,
    site: 'site-1',
    kind: 'water-meter',
    topic: `facility/site-1/water-meter/${device}/telemetry`,
    qos,
    transport: 'mqtt',
    ts: 1_767_571_200_000 + i,
    values: { volume_m3: i / 1000, flow_lph: -1.5, tamper: i % 2 === 0 },
    bad: [],
    silent: false,
    faults: [],
  };
}

/** A subscriber that records every message on facility/#, resubscribing after a broker restart. */
async function subscribe(
  url: string,
  opts: mqtt.IClientOptions = {},
): Promise<{ client: mqtt.MqttClient; got: { topic: string; payload: string }[] }> {
  const got: { topic: string; payload: string }[] = [];
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 100, ...opts });
  client.on('message', (topic, p) => got.push({ topic, payload: p.toString() }));
  await client.subscribeAsync('facility/#', { qos: 1 });
  return { client, got };
}

describe('MQTT publisher against a real Mosquitto', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('publishes QoS 0, 1 and 2 in one batch, byte for byte, and counts every acknowledgement', async () => {
    const broker = await startMosquitto();
    cleanup.push(() => broker.stop());
    const { client, got } = await subscribe(broker.url);
    cleanup.push(() => client.endAsync());
    const pub = new MqttPublisher({ url: broker.url, logger });
    await pub.start();
    try {
      // Topics of every remaining-length size class: short, and one whose packet needs 2 bytes.
      const batch = [msg(1, 0), msg(2, 1), msg(3, 2), msg(4, 1, `wm-${'x'.repeat(200)}`)];
      pub.publish(batch);
      await waitFor(() => got.length === 4, 5000, 'four messages');
      await pub.drain(5000);
      expect(pub.stats()).toMatchObject({
        sent: 4,
        completed: 4,
        errors: 0,
        outstanding: 0,
        connected: true,
      });
      const byTopic = new Map(got.map((g) => [g.topic, g.payload]));
      for (const m of batch)
        expect(JSON.parse(byTopic.get(m.topic) as string)).toEqual({ ts: m.ts, ...m.values });
      // Many ticks' worth, within capacity() as the runner does: ids wrap past 65,535 without a
      // collision or a lost acknowledgement.
      for (let k = 0; k < 70; k++) {
        await waitFor(() => pub.capacity() >= 1000, 10_000, 'capacity');
        pub.publish(Array.from({ length: 1000 }, (_, i) => msg(i, 1)));
      }
      await pub.drain(20_000);
      expect(pub.stats()).toMatchObject({ sent: 70_004, completed: 70_004, errors: 0, outstanding: 0 });
      await waitFor(() => got.length === 70_004, 10_000, 'every message at the subscriber');
    } finally {
      await pub.stop();
    }
  });

  it('keeps QoS 1 messages across a broker restart and sends them once it is back; drops QoS 0', async () => {
    const broker: Mosquitto = await startMosquitto();
    cleanup.push(() => broker.stop());
    const pub = new MqttPublisher({ url: broker.url, logger, reconnectPeriodMs: 1500 });
    await pub.start();
    try {
      await broker.halt();
      await waitFor(() => !pub.stats().connected, 5000, 'publisher offline');
      pub.publish([msg(1, 1), msg(2, 0), msg(3, 1)]);
      expect(pub.stats()).toMatchObject({ sent: 3, completed: 1, errors: 1, outstanding: 2 });
      expect(pub.capacity()).toBe(20_000 - 2);
      await broker.start();
      // The subscriber (reconnecting every 100 ms) is back before the publisher (1.5 s).
      const { client, got } = await subscribe(broker.url);
      cleanup.push(() => client.endAsync());
      await waitFor(() => got.length === 2, 10_000, 'queued messages delivered');
      expect(got.map((g) => g.topic)).toEqual([msg(1, 1).topic, msg(3, 1).topic]);
      await pub.drain(5000);
      expect(pub.stats()).toMatchObject({ sent: 3, completed: 3, errors: 1, outstanding: 0, reconnects: 1 });
    } finally {
      await pub.stop();
    }
  });

  it('connects over TLS with credentials; a wrong password or an unknown CA fails start()', async () => {
    const tls = selfSignedCert();
    cleanup.push(() => rmSync(tls.dir, { recursive: true, force: true }));
    const broker = await startMosquitto({ tls, users: { sim: 'p@ss word' } });
    cleanup.push(() => broker.stop());
    const url = `mqtts://sim:${encodeURIComponent('p@ss word')}@127.0.0.1:${broker.port}`;
    const { client, got } = await subscribe(`mqtts://127.0.0.1:${broker.port}`, {
      username: 'sim',
      password: 'p@ss word',
      ca: readFileSync(tls.cert),
    });
    cleanup.push(() => client.endAsync());
    const pub = new MqttPublisher({ url, caFile: tls.cert, logger });
    await pub.start();
    pub.publish([msg(1, 1)]);
    await waitFor(() => got.length === 1, 5000, 'message over TLS');
    await pub.stop();

    const wrong = new MqttPublisher({
      url: `mqtts://127.0.0.1:${broker.port}`,
      username: 'sim',
      password: 'nope',
      caFile: tls.cert,
      logger,
    });
    await expect(wrong.start()).rejects.toThrow(/refused the connection \(code 5\)/);
    const untrusted = new MqttPublisher({ url, logger });
    await expect(untrusted.start()).rejects.toThrow(/self.signed/i);
    expect(() => new MqttPublisher({ url: 'ws://127.0.0.1:1', logger })).toThrow(/unsupported/);
  });
});

describe('MQTT publisher retransmission (a scripted broker)', () => {
  it('sends unacknowledged QoS 1 messages again with DUP after a reconnect, then completes them', async () => {
    const { createServer } = await import('node:net');
    const connections: Buffer[][] = [];
    const server = createServer((sock) => {
      const packets: Buffer[] = [];
      const n = connections.push(packets);
      let buf = Buffer.alloc(0);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        // Every packet here is under 128 bytes, so the remaining length is one byte.
        while (buf.length >= 2 && buf.length >= 2 + (buf[1] as number)) {
          const p = buf.subarray(0, 2 + (buf[1] as number));
          buf = buf.subarray(p.length);
          packets.push(Buffer.from(p));
          const type = (p[0] as number) >> 4;
          if (type === 1) sock.write(Buffer.from([0x20, 2, 0, 0])); // CONNACK
          // First connection: swallow PUBLISHes unacknowledged, then drop it after the second.
          if (type === 3 && n === 1 && packets.filter((q) => (q[0] as number) >> 4 === 3).length === 2)
            sock.destroy();
          if (type === 3 && n > 1) {
            const tlen = ((p[2] as number) << 8) | (p[3] as number);
            sock.write(Buffer.from([0x40, 2, p[4 + tlen] as number, p[5 + tlen] as number])); // PUBACK
          }
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const pub = new MqttPublisher({ url: `mqtt://127.0.0.1:${port}`, logger, reconnectPeriodMs: 50 });
    try {
      await pub.start();
      pub.publish([msg(1, 1), msg(2, 1)]);
      await waitFor(() => pub.stats().reconnects === 1, 5000, 'reconnect');
      await pub.drain(5000);
      expect(pub.stats()).toMatchObject({ sent: 2, completed: 2, errors: 0, retransmitted: 2 });
      const publishes = (i: number): Buffer[] =>
        (connections[i] as Buffer[]).filter((p) => (p[0] as number) >> 4 === 3);
      const [first, second] = [publishes(0), publishes(1)];
      expect(first.map((p) => p[0])).toEqual([0x32, 0x32]);
      expect(second.map((p) => p[0])).toEqual([0x3a, 0x3a]); // QoS 1 with DUP
      // The same packets otherwise: ids and payloads unchanged, oldest first.
      expect(second.map((p) => p.subarray(1))).toEqual(first.map((p) => p.subarray(1)));
    } finally {
      await pub.stop();
      server.close();
    }
  });
});
