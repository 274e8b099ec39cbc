import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import mqtt from 'mqtt';
import { testConfig } from '../fixtures/gateway.js';
import { collect } from '../fixtures/publisher.js';
import { waitFor } from '../fixtures/ports.js';
import { fakeSourceContext, type FakeSourceContext } from '../fixtures/source-context.js';
import { createMqttSources } from '../../adapters/mqtt/index.js';
import type { MqttSource } from '../../adapters/mqtt/source.js';
import type { EmbeddedBroker } from '../../adapters/broker/embedded.js';
import type { GatewayConfig } from '../../gateway/src/config/schema.js';

/**
 * The MQTT adapter tested through its Source contract alone: a real (embedded) broker and a fake
 * context, no pipeline, no outbox, no InfluxDB.
 */
describe('MQTT source with a fake context', () => {
  let cfg: GatewayConfig;
  let broker: EmbeddedBroker;
  let source: MqttSource;
  let ctx: FakeSourceContext;
  const held: Array<() => void> = [];
  let holding = true;

  beforeAll(async () => {
    cfg = testConfig({});
    const sources = await createMqttSources(cfg);
    expect(sources.map((s) => s.name)).toEqual(['broker', 'mqtt']);
    broker = sources[0] as EmbeddedBroker;
    source = sources[1] as MqttSource;
    // The temporary data dir, not the working directory: the source keeps its dead letters there.
    await broker.start(fakeSourceContext({ dataDir: cfg.dataDir }));
    // Durability is the test's to grant: acks wait until it releases the held callbacks.
    ctx = {
      ...fakeSourceContext({ dataDir: cfg.dataDir }),
      afterDurable: (cb) => (holding ? void held.push(cb) : cb()),
    };
    await source.start(ctx);
    await source.whenSubscribed();
  });

  afterAll(async () => {
    holding = false;
    for (const cb of held.splice(0)) cb();
    await source?.stop();
    await broker?.stop();
    rmSync(cfg.dataDir, { recursive: true, force: true });
  });

  it('hands each message to ctx.ingestMessage and acknowledges it to the broker only once ctx says it is durable', async () => {
    const url = `mqtt://127.0.0.1:${broker.port}`;
    const dev = await mqtt.connectAsync(url, { clientId: 'dev-1' });
    try {
      await dev.publishAsync('facility/s1/env-probe/p1/telemetry', '{"temperature_c": 21.5}', { qos: 1 });
    } finally {
      await dev.endAsync();
    }
    await waitFor(() => ctx.messages.length === 1, 5000, 'message handed over');
    expect(ctx.messages[0]!.topic).toBe('facility/s1/env-probe/p1/telemetry');
    expect(ctx.messages[0]!.payload.toString()).toBe('{"temperature_c": 21.5}');
    await waitFor(() => held.length === 1, 5000, 'ack held for durability');
    expect(source.health()).toMatchObject({ state: 'ok', messages: 1, acks: 0 });
    for (const cb of held.splice(0)) cb();
    expect(source.health()).toMatchObject({ state: 'ok', messages: 1, acks: 1 });
  });

  it('answers whenSubscribed at once when asked after the broker granted the subscriptions', async () => {
    // The gateway fixture asks only after start(), when the SUBACK has usually arrived already.
    await expect(source.whenSubscribed(500)).resolves.toBeUndefined();
  });

  it('publishes a rejection where operators look for them', async () => {
    const sub = await collect(`mqtt://127.0.0.1:${broker.port}`, 'facility/_rejected/#');
    try {
      source.publishRejected('s1', 'env-probe', 'p1', '{"reason":"value_out_of_range"}');
      await waitFor(() => sub.messages.length === 1, 5000, 'rejection published');
      expect(sub.messages[0]).toEqual({
        topic: 'facility/_rejected/s1/env-probe/p1',
        payload: '{"reason":"value_out_of_range"}',
      });
    } finally {
      await sub.close();
    }
  });
});
