import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { collect, publishAll } from '../fixtures/publisher.js';
import { waitFor } from '../fixtures/ports.js';
import type { Gateway } from '../../gateway/src/gateway.js';

const now = Date.now();
const T = (kind: string, device = 'dev-1', site = 'site-x') => `facility/${site}/${kind}/${device}/telemetry`;

/** Each case: what is published, and the reason code it must be rejected with. */
const CASES: Array<{
  name: string;
  topic: string;
  payload: string | Buffer;
  reason: string;
  rejectedTopic?: string;
}> = [
  { name: 'not JSON', topic: T('env-probe'), payload: '{"temperature_c": 21.5', reason: 'json_invalid' },
  { name: 'JSON array', topic: T('env-probe'), payload: '[1,2,3]', reason: 'payload_not_object' },
  { name: 'empty payload', topic: T('env-probe'), payload: '', reason: 'payload_empty' },
  {
    name: 'string instead of number',
    topic: T('env-probe'),
    payload: '{"temperature_c":"hot"}',
    reason: 'value_type',
  },
  {
    name: 'NaN as a string',
    topic: T('env-probe'),
    payload: '{"temperature_c":"NaN"}',
    reason: 'value_not_finite',
  },
  {
    name: 'overflowing number (Infinity)',
    topic: T('env-probe'),
    payload: '{"temperature_c":1e999}',
    reason: 'value_not_finite',
  },
  {
    name: 'humidity above 100 %',
    topic: T('env-probe'),
    payload: '{"humidity_pct":140}',
    reason: 'value_out_of_range',
  },
  {
    name: 'negative chlorine',
    topic: T('chlorination', 'tank-1'),
    payload: '{"free_chlorine_mgl":-0.2}',
    reason: 'value_out_of_range',
  },
  { name: 'pH 15', topic: T('chlorination', 'tank-1'), payload: '{"ph":15}', reason: 'value_out_of_range' },
  {
    // An extra metric named like an inherited property is not mistaken for a catalogue metric.
    name: 'absurd extra metric named constructor',
    topic: T('env-probe'),
    payload: '{"constructor":1e300}',
    reason: 'value_out_of_range',
  },
  { name: 'boolean metric as 7', topic: T('env-probe'), payload: '{"smoke":7}', reason: 'value_type' },
  { name: 'null value', topic: T('gas-meter', 'gm-9'), payload: '{"flow_m3h":null}', reason: 'value_type' },
  {
    name: 'ts an hour in the future',
    topic: T('env-probe'),
    payload: JSON.stringify({ ts: now + 3600_000, temperature_c: 20 }),
    reason: 'ts_future',
  },
  {
    name: 'ts in seconds (too old)',
    topic: T('env-probe'),
    payload: JSON.stringify({ ts: Math.floor(now / 1000), temperature_c: 20 }),
    reason: 'ts_too_old',
  },
  {
    name: 'ts not RFC 3339',
    topic: T('env-probe'),
    payload: '{"ts":"yesterday","temperature_c":20}',
    reason: 'ts_invalid',
  },
  {
    name: 'payload over 64 KiB',
    topic: T('env-probe'),
    payload: JSON.stringify({ temperature_c: 20, pad: 'x'.repeat(70_000) }),
    reason: 'payload_too_large',
  },
  {
    name: 'unknown kind',
    topic: T('toaster'),
    payload: '{"temperature_c":20}',
    reason: 'kind_unknown',
    rejectedTopic: 'facility/_rejected/site-x/toaster/dev-1',
  },
  {
    name: 'bad device id',
    topic: 'facility/site-x/env-probe/dev.1/telemetry',
    payload: '{"temperature_c":20}',
    reason: 'id_invalid',
    rejectedTopic: 'facility/_rejected/_invalid/_invalid/_invalid',
  },
  {
    name: 'device published under another kind',
    topic: T('water-meter'),
    payload: '{"flow_lph":3}',
    reason: 'kind_mismatch',
  },
  {
    name: 'metric name with a space',
    topic: T('env-probe'),
    payload: '{"temperature_c":20,"fan speed":3}',
    reason: 'metric_name_invalid',
  },
  {
    name: 'derived field sent by a device',
    topic: T('env-probe'),
    payload: '{"temperature_c":20,"dew_point_c":9}',
    reason: 'metric_reserved',
  },
  {
    name: 'quality naming a metric the message does not carry',
    topic: T('env-probe'),
    payload: '{"temperature_c":20,"quality":{"humidity_pct":"bad"}}',
    reason: 'quality_invalid',
  },
  {
    name: 'no values at all',
    topic: T('env-probe'),
    payload: JSON.stringify({ ts: now }),
    reason: 'no_values',
  },
  {
    name: '"values" not an object',
    topic: T('env-probe'),
    payload: '{"values":[20]}',
    reason: 'values_not_object',
  },
  {
    name: 'extra field switching type',
    topic: T('env-probe', 'dev-2'),
    payload: '{"fan_rpm":true}',
    reason: 'field_type_conflict',
  },
  {
    name: 'too many fields',
    topic: T('env-probe'),
    payload: JSON.stringify(Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`x${i}`, i]))),
    reason: 'too_many_fields',
  },
];

describe('bad input: rejected with a reason, counted, republished; good data flows on', () => {
  let mosq: Mosquitto;
  let gw: Gateway & { cleanup(): Promise<void> };

  beforeAll(async () => {
    mosq = await startMosquitto();
    gw = await startGateway(
      testConfig({ mqtt: { url: mosq.url, clientId: 'gw-bad-input' }, influx: { enabled: false } }),
    );
  });
  afterAll(async () => {
    await gw?.cleanup();
    await mosq?.stop();
  });

  it(`rejects ${CASES.length} kinds of bad input and keeps going`, async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(15);
    const rejected = await collect(mosq.url, 'facility/_rejected/#');
    const good = (v: number) => ({
      topic: T('env-probe', 'good-1'),
      payload: JSON.stringify({ ts: Date.now(), temperature_c: v }),
    });
    // A first extra-field type for the conflict case.
    await publishAll(mosq.url, [good(21), { topic: T('env-probe', 'dev-2'), payload: '{"fan_rpm":1200}' }], {
      window: 1,
    });
    await publishAll(
      mosq.url,
      CASES.map((c) => ({ topic: c.topic, payload: c.payload })),
      { window: 1 },
    );
    await publishAll(mosq.url, [good(22.5)]);

    await waitFor(() => rejected.messages.length === CASES.length, 15_000, 'every rejection republished');
    const reasons = rejected.messages.map((m) => (JSON.parse(m.payload) as { reason: string }).reason);
    expect(reasons).toEqual(CASES.map((c) => c.reason));
    rejected.messages.forEach((m, i) => {
      const c = CASES[i]!;
      const body = JSON.parse(m.payload) as { detail: string; topic: string; payload: string };
      expect(m.topic, c.name).toBe(
        c.rejectedTopic ?? c.topic.replace(/^facility\//, 'facility/_rejected/').replace(/\/telemetry$/, ''),
      );
      expect(body.detail.length, c.name).toBeGreaterThan(3);
      expect(body.topic).toBe(c.topic);
    });

    // Counted per reason in /metrics.
    const metrics = await gw.app!.inject({ method: 'GET', url: '/metrics' });
    const expected = new Map<string, number>();
    for (const c of CASES) expected.set(c.reason, (expected.get(c.reason) ?? 0) + 1);
    for (const [reason, n] of expected) {
      expect(metrics.body).toMatch(
        new RegExp(`gateway_messages_rejected_total\\{reason="${reason}"\\} ${n}\\b`),
      );
    }

    // Good data before and after went through. (The last rejection can reach the subscriber
    // before the broker has handed the good message after it to the gateway: wait for it.)
    const latest = async (): Promise<unknown> => {
      const dev = await gw.app!.inject({
        method: 'GET',
        url: '/api/devices/site-x%2Fgood-1',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(dev.statusCode).toBe(200);
      return (dev.json() as { latest: { temperature_c: { value: unknown } } }).latest.temperature_c.value;
    };
    await waitFor(async () => (await latest()) === 22.5, 10_000, 'the good message after the bad ones');
    expect(gw.health().mqtt?.state).toBe('ok');
    await rejected.close();
  });
});
