import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { ADMIN_TOKEN, spawnGateway, type GatewayProcess } from '../fixtures/gateway.js';
import { waitFor } from '../fixtures/ports.js';

/**
 * Must-show 4 (issue 20): SIGKILL in the middle of an on-delay. The rule state is committed with
 * the readings that changed it (ADR 0080), so after a restart the delay completes at its own time,
 * and the alarm is raised once; a second SIGKILL right after the raise neither loses it nor raises
 * it again.
 */
const DELAY_MS = 30_000;
const RULE = 'test.door.open';
const TOPIC = 'facility/site-rs/env-probe/room-1/telemetry';

interface AlarmJson {
  id: string;
  rule: string;
  state: string;
  raisedAt: string;
  clearedAt: string | null;
}

describe('rule state survives SIGKILL', () => {
  let mosq: Mosquitto;
  let dataDir: string;
  let gw: GatewayProcess | undefined;
  let pub: mqtt.MqttClient;

  beforeAll(async () => {
    mosq = await startMosquitto();
    dataDir = mkdtempSync(join(tmpdir(), 'fgw-rule-crash-'));
    pub = await mqtt.connectAsync(mosq.url, { clientId: 'rule-crash-pub', clean: true });
  });
  afterAll(async () => {
    await pub?.endAsync();
    await gw?.stop();
    await mosq?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const config = () => ({
    dataDir,
    mqtt: { url: mosq.url, clientId: 'gw-rule-crash', keepaliveSec: 5 },
    influx: { enabled: false },
    alarms: { tickMs: 200 },
    rules: {
      custom: [
        {
          id: RULE,
          kind: 'state',
          kinds: ['env-probe'],
          class: 'routine',
          metric: 'door_open',
          severity: 'warning',
          onDelayMs: DELAY_MS,
        },
      ],
    },
  });

  const send = (door: boolean, ts = Date.now()) =>
    pub.publishAsync(TOPIC, JSON.stringify({ ts, door_open: door, temperature_c: 22 }), { qos: 1 });

  async function accepted(g: GatewayProcess): Promise<number> {
    const h = (await fetch(`${g.url}/api/health`).then((r) => r.json())) as {
      components: { ingest?: { accepted: number } };
    };
    return h.components.ingest?.accepted ?? 0;
  }

  async function doorAlarms(g: GatewayProcess): Promise<AlarmJson[]> {
    const r = await fetch(`${g.url}/api/alarms?state=all&device=room-1`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    return ((await r.json()) as { alarms: AlarmJson[] }).alarms.filter((a) => a.rule === RULE);
  }

  async function start(): Promise<GatewayProcess> {
    const g = await spawnGateway(config());
    await waitFor(
      async () =>
        (
          (await fetch(`${g.url}/api/health`).then((r) => r.json())) as {
            components: { mqtt?: { state: string } };
          }
        ).components.mqtt?.state === 'ok',
      20_000,
      'subscribed',
    );
    return g;
  }

  it('completes a running on-delay at its own time after a crash, and raises it once', async () => {
    gw = await start();
    const first = gw;
    await send(false);
    await waitFor(async () => (await accepted(first)) >= 1, 10_000, 'door closed seen');

    // The door opens; the gateway acknowledges the reading once it is durable (the outbox's group
    // commit, every 5 ms), and is killed at once, long before any periodic save.
    const openedAt = Date.now();
    await send(true, openedAt);
    await waitFor(async () => (await accepted(first)) >= 2, 10_000, 'door open seen');
    await new Promise((r) => setTimeout(r, 100));
    await first.kill();

    // Down for a while, in the middle of the delay; the door stays open and the probe keeps reporting.
    const reporting = setInterval(() => void send(true), 2000);
    try {
      await new Promise((r) => setTimeout(r, 4000));
      gw = await start();
      const second = gw;
      const restartedAt = Date.now();
      expect(restartedAt - openedAt).toBeLessThan(DELAY_MS - 3000);

      await waitFor(
        async () => (await doorAlarms(second)).length > 0,
        DELAY_MS + 10_000,
        'door alarm raised',
      );
      const seenAt = Date.now();
      const alarms = await doorAlarms(second);
      expect(alarms).toHaveLength(1);
      // At the delay's own time (counted from the opening before the crash), not 20 s after the restart.
      expect(Math.abs(Date.parse(alarms[0]!.raisedAt) - (openedAt + DELAY_MS))).toBeLessThan(1000);
      expect(seenAt).toBeLessThan(restartedAt + DELAY_MS - 2000);

      // Killed again right after the raise: the alarm is neither lost nor raised a second time.
      await new Promise((r) => setTimeout(r, 300));
      await second.kill();
      gw = await start();
      const third = gw;
      await new Promise((r) => setTimeout(r, 3000));
      const after = await doorAlarms(third);
      expect(after.map((a) => [a.id, a.state])).toEqual([[alarms[0]!.id, 'active-unacknowledged']]);
    } finally {
      clearInterval(reporting);
    }

    // The door closes: the same alarm clears (the restored rule knows it raised).
    const third = gw;
    await send(false);
    await waitFor(async () => (await doorAlarms(third))[0]?.clearedAt !== null, 10_000, 'door alarm cleared');
    expect(await doorAlarms(third)).toHaveLength(1);
    expect(await third.stop()).toBe(0);
    gw = undefined;
  }, 120_000);
});
