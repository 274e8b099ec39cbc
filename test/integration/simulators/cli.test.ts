import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePayload } from '../../../adapters/mqtt/sparkplug/codec.js';
import { startMosquitto, type Mosquitto } from '../../fixtures/mosquitto.js';
import { waitFor } from '../../fixtures/ports.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI from source the way `npm run simulate` runs its build (the script itself builds
 * first, which a test should not do). `onStdout` may act on the running process.
 */
function cli(args: string[], onStdout?: (text: string, kill: () => void) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'simulators/cli.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, SIM_LOG_LEVEL: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout, () => p.kill('SIGTERM'));
    });
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const guard = setTimeout(() => p.kill('SIGKILL'), 50_000);
    p.on('error', reject);
    p.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('simulate CLI', () => {
  it.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['--speed', 'fast'], /--speed must be a positive number, got fast/],
    [['--qos', '3'], /--qos must be an integer 0\.\.2, got 3/],
    [['--devices', '0'], /--devices must be an integer 1\.\.1000000, got 0/],
    [['--broker', 'http://127.0.0.1:1883'], /--broker must be an mqtt:\/\/ or mqtts:\/\/ URL/],
    [['--broker-ca', '/nonexistent/ca.pem'], /--broker-ca: no such file/],
    [['--scenario', 'a.yaml', '--devices', '5'], /either --scenario or --devices/],
    [['--protocol', 'mqtt5'], /--protocol must be json or sparkplug, got mqtt5/],
    [['--sparkplug-group', 'g'], /--sparkplug-group needs --protocol sparkplug/],
  ])('%j: exit 2 with a message naming the problem and the usage', async (args, message) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('usage: npm run simulate');
  });

  it('an invalid scenario file: exit 2 with the key path', async () => {
    const r = await cli(['--scenario', 'package.json', '--no-mqtt']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid scenario package\.json:\n {2}sites: /);
  });

  it('a broker that is not there: exit 1 with the reason', async () => {
    const r = await cli(['--devices', '5', '--broker', 'mqtt://127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/simulate: mqtt mqtt:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
  });

  describe('against a real Mosquitto', () => {
    let broker: Mosquitto;
    let sub: mqtt.MqttClient;
    const got: { topic: string; payload: Record<string, unknown> }[] = [];

    beforeAll(async () => {
      broker = await startMosquitto();
      sub = await mqtt.connectAsync(broker.url, { clientId: 'cli-test-sub' });
      sub.on('message', (topic, p) =>
        got.push({ topic, payload: JSON.parse(p.toString()) as Record<string, unknown> }),
      );
      await sub.subscribeAsync('facility/#', { qos: 1 });
    });
    afterAll(async () => {
      await sub?.endAsync();
      await broker?.stop();
    });

    it('--devices 50 --speed 60 --duration 6: publishes, prints progress, exits 0', async () => {
      got.length = 0;
      const r = await cli([
        '--devices',
        '50',
        '--speed',
        '60',
        '--duration',
        '6',
        '--seed',
        '4',
        '--broker',
        broker.url,
      ]);
      expect(r.stderr).not.toMatch(/error/i);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('simulation started');
      expect(r.stdout).toMatch(/msg\/s \(scheduled \d+\)\s+50 devices\s+0 active faults/);
      expect(r.stdout).toContain('stopping (duration reached)');
      // 50 devices at speed 60: tanks and probes report every simulated minute (every real
      // second), meters every 15 minutes (15 s), first reports spread over one interval.
      expect(got.length).toBeGreaterThan(40);
      expect(new Set(got.map((g) => g.topic.split('/')[2])).size).toBeGreaterThanOrEqual(3);
      for (const g of got) {
        expect(g.topic).toMatch(/^facility\/site-001\/[\w-]+\/site-001-[a-z]+-\d+\/telemetry$/);
        expect(typeof g.payload.ts).toBe('number');
        // Accelerated without --start: simulated time stays behind the wall clock.
        expect(g.payload.ts as number).toBeLessThanOrEqual(Date.now());
      }
    });

    it('stops cleanly on SIGTERM with everything handed over acknowledged and delivered', async () => {
      got.length = 0;
      const r = await cli(
        ['--devices', '20', '--interval', '0.5', '--qos', '1', '--broker', broker.url],
        (out, kill) => {
          if (out.includes('simulation started')) setTimeout(kill, 1500);
        },
      );
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('stopping (SIGTERM)');
      const done = /stopped: mqtt sent (\d+), completed (\d+), errors 0, unacknowledged 0/.exec(r.stdout);
      expect(done).not.toBeNull();
      const [sent, completed] = [Number(done?.[1]), Number(done?.[2])];
      expect(completed).toBe(sent);
      // ~20 devices × 2/s for 1.5 s, first reports spread over the first half second.
      expect(sent).toBeGreaterThan(20);
      // QoS 1 both ways: every acknowledged message reached the subscriber.
      await waitFor(() => got.length >= sent, 5000, 'every message at the subscriber');
      expect(got.length).toBe(sent);
    });

    it('--protocol sparkplug: NBIRTH, a DBIRTH per device, DDATA in sequence, NDEATH on SIGTERM', async () => {
      const spb: Array<{ topic: string; seq: number | undefined; bdSeq: unknown; aliasOnly: boolean }> = [];
      const s = await mqtt.connectAsync(broker.url, { clientId: 'cli-test-spb' });
      s.on('message', (topic, p) => {
        const d = decodePayload(p);
        spb.push({
          topic,
          seq: d.seq,
          bdSeq: d.metrics.find((m) => m.name === 'bdSeq')?.value,
          aliasOnly:
            d.metrics.length > 0 && d.metrics.every((m) => m.name === undefined && m.alias !== undefined),
        });
      });
      await s.subscribeAsync('spBv1.0/#', { qos: 1 });
      try {
        const r = await cli(
          ['--devices', '10', '--interval', '0.5', '--protocol', 'sparkplug', '--broker', broker.url],
          (out, kill) => {
            if (out.includes('simulation started')) setTimeout(kill, 2500);
          },
        );
        expect(r.code).toBe(0);
        await waitFor(() => spb.some((m) => m.topic.includes('/NDEATH/')), 5000, 'NDEATH');
        const node = 'spBv1.0/facility/NBIRTH/site-001';
        expect(spb[0]!.topic).toBe(node);
        expect(spb[0]!.seq).toBe(0);
        const births = spb.filter((m) => m.topic.startsWith('spBv1.0/facility/DBIRTH/site-001/'));
        expect(new Set(births.map((m) => m.topic)).size).toBe(10);
        const data = spb.filter((m) => m.topic.startsWith('spBv1.0/facility/DDATA/site-001/'));
        expect(data.length).toBeGreaterThan(10);
        for (const d of data) expect(d.aliasOnly).toBe(true);
        // Every message after the NBIRTH carries the next sequence number.
        const seqs = spb.filter((m) => !m.topic.includes('/NDEATH/')).map((m) => m.seq);
        seqs.forEach((q, i) => expect(q).toBe(i % 256));
        const death = spb.find((m) => m.topic === 'spBv1.0/facility/NDEATH/site-001');
        expect(death?.bdSeq).toBe(spb[0]!.bdSeq);
      } finally {
        await s.endAsync();
      }
    });
  });
});
