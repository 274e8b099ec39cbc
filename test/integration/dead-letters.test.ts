import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/src/gateway.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { publishAll } from '../fixtures/publisher.js';

/**
 * Rejected messages go to `facility/_rejected/...` at QoS 1 through a bounded queue kept until
 * the broker's PUBACK, against a real Mosquitto: a subscriber receives them at QoS 1, the counters
 * in /metrics move, and letters rejected while the broker is away go out when it is back, beyond
 * the bound dropped and counted.
 */
const BAD = (device: string) => `facility/site-d/env-probe/${device}/telemetry`;

describe('dead letters at QoS 1', () => {
  let mosq: Mosquitto;
  let gw: Gateway & { cleanup(): Promise<void> };
  let sub: mqtt.MqttClient;
  const got: Array<{ topic: string; qos: number }> = [];

  const metric = async (name: string): Promise<number> => {
    const res = await gw.app!.inject({ method: 'GET', url: '/metrics' });
    const m = res.body.match(new RegExp(`^${name} (\\d+)$`, 'm'));
    return m ? Number(m[1]) : NaN;
  };

  beforeAll(async () => {
    mosq = await startMosquitto();
    gw = await startGateway(
      testConfig({
        mqtt: {
          url: mosq.url,
          clientId: 'gw-dead-letters',
          // Slower than the subscriber's, so after a broker restart the subscriber is back first.
          reconnect: { minMs: 3000, maxMs: 3000 },
          rejectedQueue: { maxMessages: 5 },
        },
        influx: { enabled: false },
      }),
    );
    sub = await mqtt.connectAsync(mosq.url, { clientId: 'dl-sub', reconnectPeriod: 200 });
    sub.on('message', (topic, _p, packet) => got.push({ topic, qos: packet.qos }));
    await sub.subscribeAsync('facility/_rejected/#', { qos: 1 });
  }, 30_000);

  afterAll(async () => {
    await sub?.endAsync();
    await gw?.cleanup();
    await mosq?.stop();
  });

  it('republishes a rejected message at QoS 1 and counts it once acknowledged', async () => {
    await publishAll(mosq.url, [{ topic: BAD('p-1'), payload: '{"temperature_c":"hot"}' }]);
    await waitFor(() => got.length === 1, 10_000, 'the rejected message at the subscriber');
    // A QoS 1 subscription receives at the publisher's QoS: 1 only if the gateway sent at QoS 1.
    expect(got[0]).toEqual({ topic: 'facility/_rejected/site-d/env-probe/p-1', qos: 1 });
    await waitFor(async () => (await metric('gateway_dead_letters_published_total')) === 1, 5000, 'PUBACK');
    expect(await metric('gateway_dead_letters_pending')).toBe(0);
    expect(await metric('gateway_dead_letters_dropped_total')).toBe(0);
  });

  it('keeps letters while the broker is away, sends them when it is back, drops beyond the bound', async () => {
    await mosq.halt();
    await waitFor(() => gw.mqtt!.health().state !== 'ok', 10_000, 'the gateway sees the broker gone');
    // Messages the gateway already holds when the broker goes (what the outage caught mid-way).
    for (let i = 0; i < 8; i++) gw.pipeline!.handleMessage(BAD(`q-${i}`), Buffer.from('[1]'), Date.now());
    expect(await metric('gateway_dead_letters_pending')).toBe(5);
    expect(await metric('gateway_dead_letters_dropped_total')).toBe(3);

    got.length = 0;
    await mosq.start();
    await waitFor(() => sub.connected, 10_000, 'the subscriber back');
    await sub.subscribeAsync('facility/_rejected/#', { qos: 1 });
    await waitFor(() => got.length === 5, 15_000, 'the five kept letters at the subscriber');
    // The oldest three were dropped at the bound; the newest five arrive, in order, at QoS 1.
    expect(got.map((g) => g.topic.split('/').at(-1))).toEqual(['q-3', 'q-4', 'q-5', 'q-6', 'q-7']);
    expect(got.every((g) => g.qos === 1)).toBe(true);
    await waitFor(async () => (await metric('gateway_dead_letters_published_total')) === 6, 5000, 'PUBACKs');
    expect(await metric('gateway_dead_letters_pending')).toBe(0);
  }, 40_000);
});
