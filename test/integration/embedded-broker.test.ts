import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { waitFor } from '../fixtures/ports.js';
import type { Gateway } from '../../gateway/src/gateway.js';

/** Without an external broker the gateway runs its own (aedes); devices connect to it directly. */
describe('embedded broker', () => {
  let gw: Gateway & { cleanup(): Promise<void> };

  beforeAll(async () => {
    gw = await startGateway(
      testConfig({
        broker: { host: '127.0.0.1', port: 0, username: 'device', password: 'dev-secret-1' },
        influx: { enabled: false },
      }),
    );
  });
  afterAll(async () => {
    await gw?.cleanup();
  });

  it('accepts devices with the configured credentials and ingests what they publish', async () => {
    expect(gw.broker?.port).toBeGreaterThan(0);
    const url = `mqtt://127.0.0.1:${gw.broker!.port}`;
    const dev = await mqtt.connectAsync(url, {
      username: 'device',
      password: 'dev-secret-1',
      clientId: 'tank-7',
    });
    await dev.publishAsync(
      'facility/plant-9/chlorination/tank-7/telemetry',
      JSON.stringify({ ts: Date.now(), free_chlorine_mgl: 0.61, ph: 7.4, dosing_pump_on: 1 }),
      { qos: 1 },
    );
    await dev.endAsync();
    const res = await waitFor(
      async () => {
        const r = await gw.app!.inject({
          url: '/api/devices/plant-9%2Ftank-7',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        });
        return r.statusCode === 200 ? r.json() : null;
      },
      10_000,
      'device registered',
    );
    expect(res.discovered).toBe(true);
    expect(res.latest.free_chlorine_mgl.value).toBe(0.61);
    expect(res.latest.dosing_pump_on.value).toBe(true);
    expect(gw.health().broker).toMatchObject({ state: 'ok' });
  });

  it('refuses a device with a wrong password', async () => {
    const url = `mqtt://127.0.0.1:${gw.broker!.port}`;
    await expect(
      mqtt.connectAsync(url, {
        username: 'device',
        password: 'wrong',
        clientId: 'intruder',
        reconnectPeriod: 0,
      }),
    ).rejects.toThrow(/Bad username or password|Not authorized/i);
  });
});
