import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startSimulation, type Simulation } from '../../../simulators/index.js';
import { startMosquitto, type Mosquitto } from '../../fixtures/mosquitto.js';
import { waitFor } from '../../fixtures/ports.js';

const KNOWN = new Set([
  'volume_m3',
  'flow_m3h',
  'flow_lph',
  'pressure_kpa',
  'battery_pct',
  'valve_open',
  'tamper',
  'balance_m3',
  'reverse_flow',
  'temperature_c',
  'free_chlorine_mgl',
  'total_chlorine_mgl',
  'ph',
  'turbidity_ntu',
  'orp_mv',
  'level_pct',
  'dosing_pump_on',
  'humidity_pct',
  'smoke',
  'water_leak',
  'door_open',
]);

describe('publishing to a real Mosquitto', () => {
  let broker: Mosquitto;
  let sub: mqtt.MqttClient;
  const got: { topic: string; payload: Record<string, unknown>; at: number }[] = [];

  beforeAll(async () => {
    broker = await startMosquitto();
    sub = await mqtt.connectAsync(broker.url, { clientId: 'sim-test-sub' });
    sub.on('message', (topic, p) =>
      got.push({ topic, payload: JSON.parse(p.toString()) as Record<string, unknown>, at: Date.now() }),
    );
    await sub.subscribeAsync('facility/#', { qos: 1 });
  });
  afterAll(async () => {
    await sub?.endAsync();
    await broker?.stop();
  });

  it('1,000 devices at a 1 s interval: ~1,000 msg/s received, right topics and payloads', async () => {
    got.length = 0;
    const sim = await startSimulation({
      brokerUrl: broker.url,
      devices: 1000,
      intervalMs: 1000,
      seed: 7,
      logger: pino({ level: 'warn' }),
    });
    try {
      await new Promise((r) => setTimeout(r, 6000));
      const s = sim.stats();
      expect(s.devices).toBe(1000);
      expect(s.scheduledPerSec).toBeCloseTo(1000, -1);
      expect(s.behind).toBe(false);
      await sim.stop();
      await waitFor(() => got.length >= (s.mqtt?.sent ?? Infinity) * 0.999, 10_000, 'all messages');
      // Over 6 s from a standing start (first reports spread over one interval): about 5,000–6,000.
      expect(got.length).toBeGreaterThan(4500);
      expect(got.length).toBeLessThan(6600);
      const devices = new Set(got.map((g) => g.topic));
      expect(devices.size).toBe(1000);
      for (const g of got.slice(0, 2000)) {
        expect(g.topic).toMatch(
          /^facility\/site-00[12]\/(water-meter|gas-meter|chlorination|env-probe)\/[\w-]+\/telemetry$/,
        );
        expect(typeof g.payload.ts).toBe('number');
        expect(Math.abs((g.payload.ts as number) - g.at)).toBeLessThan(5000);
        for (const k of Object.keys(g.payload)) if (k !== 'ts') expect(KNOWN.has(k)).toBe(true);
      }
    } finally {
      await sim.stop();
    }
  });

  it('HTTP control lists devices and starts and stops faults that change what is published', async () => {
    got.length = 0;
    const sim: Simulation = await startSimulation({
      brokerUrl: broker.url,
      speed: 600,
      seed: 3,
      controlPort: 0,
      logger: pino({ level: 'warn' }),
    });
    try {
      const base = sim.controlUrl as string;
      const devices = (await (await fetch(`${base}/devices`)).json()) as { id: string; kind: string }[];
      expect(devices.map((d) => d.id)).toContain('room-1');
      const post = await fetch(`${base}/devices/room-1/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ fault: 'smoke', forMs: 3_600_000 }),
      });
      expect(post.status).toBe(201);
      expect(
        (await fetch(`${base}/devices/room-1/faults`, { method: 'POST', body: '{"fault":"nope"}' })).status,
      ).toBe(400);
      expect(
        (await fetch(`${base}/devices/ghost/faults`, { method: 'POST', body: '{"fault":"smoke"}' })).status,
      ).toBe(404);
      const faults = (await (await fetch(`${base}/faults`)).json()) as {
        device: string;
        fault: string;
        active: boolean;
      }[];
      expect(faults).toContainEqual(
        expect.objectContaining({ device: 'room-1', fault: 'smoke', active: true }),
      );
      await waitFor(
        () => got.some((g) => g.topic.endsWith('/room-1/telemetry') && g.payload.smoke === true),
        10_000,
        'smoke',
      );
      const del = await fetch(`${base}/devices/room-1/faults/smoke`, { method: 'DELETE' });
      expect(del.status).toBe(200);
      const mark = got.length;
      await waitFor(
        () => got.slice(mark).some((g) => g.topic.endsWith('/room-1/telemetry') && g.payload.smoke === false),
        10_000,
        'smoke cleared',
      );
      const stats = (await (await fetch(`${base}/stats`)).json()) as { devices: number; speed: number };
      expect(stats).toMatchObject({ devices: 10, speed: 600 });
    } finally {
      await sim.stop();
    }
  });
});
