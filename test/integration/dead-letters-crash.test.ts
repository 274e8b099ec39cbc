import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnGateway, type GatewayProcess } from '../fixtures/gateway.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';

/**
 * Dead letters are kept on disk until the broker's PUBACK (ADR 0090), against a real Mosquitto and
 * a gateway process: letters the broker never acknowledged (their PUBLISHes swallowed on the way),
 * then the broker down and the gateway SIGKILLed, reach a QoS 1 subscriber once a new gateway
 * process and the broker are back. The new process signs in under another client id, so the
 * broker cannot hand it the bad messages again: what arrives comes from `dead-letters.db` alone.
 */
const BAD = (device: string) => `facility/site-dl/env-probe/${device}/telemetry`;
const N = 4;

/** A TCP relay that can swallow what the client sends while still passing what the server sends. */
async function startMutingProxy(targetPort: number) {
  const sockets = new Set<Socket>();
  let muted = false;
  const server: Server = createServer((client) => {
    const upstream = connect({ port: targetPort, host: '127.0.0.1' });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('data', (d: Buffer) => {
      if (!muted) upstream.write(d);
    });
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    mute: () => void (muted = true),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('dead letters survive a gateway crash', () => {
  let mosq: Mosquitto;
  let proxy: Awaited<ReturnType<typeof startMutingProxy>>;
  let dataDir: string;
  let gw: GatewayProcess | undefined;
  let sub: mqtt.MqttClient;
  const got: Array<{ topic: string; qos: number }> = [];

  const metric = async (g: GatewayProcess, name: string): Promise<number> => {
    const body = await fetch(`${g.url}/metrics`).then((r) => r.text());
    const m = body.match(new RegExp(`^${name} (\\d+)$`, 'm'));
    return m ? Number(m[1]) : NaN;
  };
  const config = (url: string, clientId: string) => ({
    dataDir,
    mqtt: { url, clientId, keepaliveSec: 30, reconnect: { minMs: 500, maxMs: 500 } },
    influx: { enabled: false },
  });

  beforeAll(async () => {
    mosq = await startMosquitto();
    proxy = await startMutingProxy(Number(new URL(mosq.url).port));
    dataDir = mkdtempSync(join(tmpdir(), 'fgw-dl-crash-'));
    sub = await mqtt.connectAsync(mosq.url, { clientId: 'dl-crash-sub', reconnectPeriod: 200 });
    sub.on('message', (topic, _p, packet) => got.push({ topic, qos: packet.qos }));
    await sub.subscribeAsync('facility/_rejected/#', { qos: 1 });
  }, 30_000);

  afterAll(async () => {
    await sub?.endAsync();
    await gw?.stop();
    await proxy?.close();
    await mosq?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('sends after a SIGKILL and a broker outage what the broker had not acknowledged', async () => {
    gw = await spawnGateway(config(`mqtt://127.0.0.1:${proxy.port}`, 'gw-dl-crash-1'));
    const mqttState = async (g: GatewayProcess) =>
      (
        (await fetch(`${g.url}/api/health`).then((r) => r.json())) as {
          components: { mqtt?: { state: string } };
        }
      ).components.mqtt?.state;
    await waitFor(async () => (await mqttState(gw!)) === 'ok', 15_000, 'the gateway subscribed');
    // From here the gateway's PUBLISHes (and PUBACKs) never reach the broker; what it is sent still arrives.
    proxy.mute();
    const pub = await mqtt.connectAsync(mosq.url, { clientId: 'dl-crash-pub' });
    for (let i = 0; i < N; i++) await pub.publishAsync(BAD(`c-${i}`), '{"temperature_c":"hot"}', { qos: 1 });
    await pub.endAsync();
    await waitFor(
      async () => (await metric(gw!, 'gateway_dead_letters_pending')) === N,
      10_000,
      'letters pending',
    );
    expect(await metric(gw!, 'gateway_dead_letters_published_total')).toBe(0);
    // Let the turn that keeps them on disk end, then crash with the broker gone too.
    await new Promise((r) => setTimeout(r, 200));
    await mosq.halt();
    await gw.kill();
    expect(got).toEqual([]);

    gw = await spawnGateway(config(mosq.url, 'gw-dl-crash-2'));
    expect(await metric(gw, 'gateway_dead_letters_restored_total')).toBe(N);
    expect(await metric(gw, 'gateway_dead_letters_pending')).toBe(N);

    await mosq.start();
    await waitFor(() => sub.connected, 10_000, 'the subscriber back');
    await sub.subscribeAsync('facility/_rejected/#', { qos: 1 });
    await waitFor(() => got.length >= N, 20_000, 'the kept letters at the subscriber');
    expect(got.map((g) => g.topic.split('/').at(-1))).toEqual(['c-0', 'c-1', 'c-2', 'c-3']);
    expect(got.every((g) => g.qos === 1)).toBe(true);
    await waitFor(async () => (await metric(gw!, 'gateway_dead_letters_pending')) === 0, 10_000, 'PUBACKs');
    expect(await metric(gw, 'gateway_dead_letters_published_total')).toBe(N);

    // Acknowledged letters are gone from disk: a third start sends nothing again.
    await gw.stop();
    got.length = 0;
    gw = await spawnGateway(config(mosq.url, 'gw-dl-crash-2'));
    expect(await metric(gw, 'gateway_dead_letters_restored_total')).toBe(0);
    expect(await metric(gw, 'gateway_dead_letters_pending')).toBe(0);
  }, 120_000);
});
