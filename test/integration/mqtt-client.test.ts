import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { MqttIngestClient, type DurableHandler } from '../../adapters/mqtt/client.js';
import { mqttSchema } from '../../gateway/src/config/schema.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { publishAll } from '../fixtures/publisher.js';
import { waitFor } from '../fixtures/ports.js';
import { selfSignedCert } from '../fixtures/tls.js';

const log = pino({ level: 'silent' });

/** A handler that records messages and releases acks only when told to. */
function holdingHandler() {
  const received: string[] = [];
  const held: Array<() => void> = [];
  const handler: DurableHandler = {
    onMessage: (_topic, payload) => received.push(payload.toString()),
    afterDurable: (cb) => held.push(cb),
    isFull: () => false,
    onDrain: () => {},
  };
  return { handler, received, release: () => held.splice(0).forEach((cb) => cb()) };
}

function client(url: string, h: DurableHandler, extra: Record<string, unknown> = {}) {
  const cfg = mqttSchema.parse({
    url,
    clientId: 'held-acks',
    reconnect: { minMs: 100, maxMs: 500 },
    ...extra,
  });
  const c = new MqttIngestClient({ ...cfg, url }, h, log);
  const subscribed = new Promise<void>((resolve) => c.once('subscribed', () => resolve()));
  c.start();
  return { c, subscribed };
}

const msgs = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => ({
    topic: 'facility/s/env-probe/p/telemetry',
    payload: `${tag}-${i}`,
  }));

describe('MQTT ingest client against a real Mosquitto', () => {
  const brokers: Mosquitto[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(brokers.map((b) => b.stop()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`MQTT ${protocolVersion === 4 ? '3.1.1' : '5'}: unacknowledged messages come back after a crash; acknowledged ones do not`, async () => {
      const mosq = await startMosquitto();
      brokers.push(mosq);
      const a = holdingHandler();
      const first = client(mosq.url, a.handler, { protocolVersion });
      await first.subscribed;
      await publishAll(mosq.url, msgs(200, 'x'));
      await waitFor(() => a.received.length === 200, 10_000, '200 received');
      first.c.abort(); // nothing was made durable, nothing acknowledged

      const b = holdingHandler();
      const second = client(mosq.url, b.handler, { protocolVersion });
      await waitFor(() => b.received.length === 200, 10_000, 'redelivery of 200');
      expect(new Set(b.received)).toEqual(new Set(a.received));
      b.release(); // now durable: acks go out
      await new Promise((r) => setTimeout(r, 300));
      second.c.abort();

      const c = holdingHandler();
      const third = client(mosq.url, c.handler, { protocolVersion });
      await third.subscribed;
      await publishAll(mosq.url, msgs(3, 'y'));
      await waitFor(() => c.received.length === 3, 10_000, 'new messages');
      expect(c.received).toEqual(['y-0', 'y-1', 'y-2']);
      const stopping = third.c.stop(); // waits for the outstanding durability callback
      c.release();
      await stopping;
    });
  }

  it('reassembles packets split across socket reads (a 300 KB payload between small ones)', async () => {
    const mosq = await startMosquitto();
    brokers.push(mosq);
    const got: Array<{ topic: string; payload: Buffer }> = [];
    const { c, subscribed } = client(
      mosq.url,
      {
        onMessage: (topic, payload) => got.push({ topic, payload: Buffer.from(payload) }),
        afterDurable: (cb) => setImmediate(cb),
        isFull: () => false,
        onDrain: () => {},
      },
      { clientId: 'split' },
    );
    await subscribed;
    const big = Buffer.alloc(300_000, 0x61);
    const topic = 'facility/s/env-probe/p/telemetry';
    const sent = [Buffer.from('first'), big, Buffer.from('ünïcödé-last')];
    for (let round = 0; round < 20; round++)
      await publishAll(
        mosq.url,
        sent.map((payload) => ({ topic, payload })),
        { window: 3 },
      );
    await waitFor(() => got.length === 60, 10_000, '60 messages');
    for (let i = 0; i < 60; i++) {
      expect(got[i]!.topic).toBe(topic);
      expect(got[i]!.payload.equals(sent[i % 3]!)).toBe(true);
    }
    await c.stop();
  });

  it('reconnects with backoff after the broker restarts and resubscribes', async () => {
    const mosq = await startMosquitto();
    brokers.push(mosq);
    const h = holdingHandler();
    const { c, subscribed } = client(
      mosq.url,
      { ...h.handler, afterDurable: (cb) => setImmediate(cb) },
      { clientId: 'reconnect' },
    );
    await subscribed;
    await mosq.halt();
    await waitFor(() => c.connectionState === 'reconnecting', 10_000, 'reconnecting');
    await mosq.start();
    await waitFor(() => c.connectionState === 'connected', 15_000, 'connected again');
    await new Promise<void>((resolve) =>
      c.connectionState === 'connected' ? setTimeout(resolve, 300) : resolve(),
    );
    await publishAll(mosq.url, msgs(5, 'after'));
    await waitFor(() => h.received.length === 5, 10_000, 'messages after the restart');
    expect(c.stats.connects).toBe(2);
    await c.stop();
  });

  it('connects over TLS with username and password, and is refused with a wrong password', async () => {
    const tls = selfSignedCert();
    dirs.push(tls.dir);
    const mosq = await startMosquitto({ tls, users: { gateway: 's3cret-pass' } });
    brokers.push(mosq);
    const h = holdingHandler();
    const ok = client(
      mosq.url,
      { ...h.handler, afterDurable: (cb) => setImmediate(cb) },
      {
        clientId: 'tls-ok',
        username: 'gateway',
        password: 's3cret-pass',
        tls: { ca: tls.cert },
      },
    );
    await ok.subscribed;
    expect(ok.c.connectionState).toBe('connected');
    await ok.c.stop();

    const bad = client(mosq.url, h.handler, {
      clientId: 'tls-bad',
      username: 'gateway',
      password: 'wrong',
      tls: { ca: tls.cert },
    });
    await waitFor(() => /refused/.test(bad.c.error ?? ''), 10_000, 'refusal');
    expect(bad.c.connectionState).toBe('reconnecting');
    bad.c.abort();

    const untrusted = client(mosq.url, h.handler, {
      clientId: 'tls-untrusted',
      username: 'gateway',
      password: 's3cret-pass',
    });
    await waitFor(() => /certificate/i.test(untrusted.c.error ?? ''), 10_000, 'certificate error');
    untrusted.c.abort();
  });
});
