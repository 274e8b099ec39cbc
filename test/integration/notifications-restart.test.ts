import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runGatewayCli, spawnGateway, type GatewayProcess } from '../fixtures/gateway.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';

/**
 * Must-show: events queued while the receiver is down survive a crash (SIGKILL) of the gateway
 * process and are delivered after the restart, each exactly once; delivered ones are not sent again.
 */
const SECRET = 'restart-shared-secret-0123456789';
const ENGINEER = 'engineer-token-0123456789';

describe('ticket webhooks across a gateway crash', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fgw-notify-'));
  const procs: GatewayProcess[] = [];
  let receiver: WebhookReceiver | undefined;

  afterAll(async () => {
    for (const p of procs) await p.kill();
    await receiver?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const spawn = async (url: string) => {
    const p = await spawnGateway(
      {
        dataDir,
        logLevel: 'info',
        broker: { host: '127.0.0.1', port: 0 },
        influx: { enabled: false },
        http: { tokens: [{ name: 'eve', role: 'engineer', token: ENGINEER }] },
        notifications: {
          pollMs: 200,
          webhooks: [
            { name: 'cmms', url, secretEnv: 'FGW_TEST_WEBHOOK_SECRET', retry: { minMs: 200, maxMs: 1000 } },
          ],
        },
      },
      { FGW_TEST_WEBHOOK_SECRET: SECRET },
    );
    procs.push(p);
    return p;
  };
  const api = async (gw: GatewayProcess, method: string, path: string, body?: unknown) => {
    const r = await fetch(`${gw.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ENGINEER}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(r.status).toBeLessThan(300);
    return (await r.json()) as { id: string };
  };
  const cmms = async (gw: GatewayProcess) => {
    const h = (await (await fetch(`${gw.url}/api/health`)).json()) as {
      components: { notifications: { channels: Record<string, { pending: number; failures: number }> } };
    };
    return h.components.notifications.channels['webhook:cmms']!;
  };

  it('delivers what was queued before a SIGKILL after the restart, once each, in order', async () => {
    const port = await freePort();
    receiver = new WebhookReceiver(SECRET, port);
    const url = receiver.url;

    // The receiver is down: every event waits in the queue.
    const a = await spawn(url);
    const ids: string[] = [];
    for (const title of ['Tank level low', 'Smoke detector test', 'Meter battery low'])
      ids.push((await api(a, 'POST', '/api/tickets', { title, site: 'plant-1' })).id);
    await api(a, 'POST', `/api/tickets/${ids[0]}/actions`, { action: 'acknowledge' });
    await waitFor(
      async () => {
        const c = await cmms(a);
        return c.pending === 4 && c.failures >= 1;
      },
      30_000,
      'four events pending, attempts failing',
    );
    await a.kill();

    await receiver.start();
    const b = await spawn(url);
    await waitFor(() => receiver!.acceptedKeys().size === 4, 60_000, 'four events delivered after restart');
    const accepted = receiver.received.filter((r) => r.status === 200);
    const events = accepted.map(
      (r) => JSON.parse(r.body) as { id: string; type: string; ticket: { id: string } },
    );
    expect(events.map((e) => [e.type, e.ticket.id])).toEqual([
      ['ticket.created', ids[0]],
      ['ticket.created', ids[1]],
      ['ticket.created', ids[2]],
      ['ticket.updated', ids[0]],
    ]);
    expect(accepted.every((r) => r.signatureValid)).toBe(true);
    expect(accepted.map((r) => r.headers['idempotency-key'])).toEqual(events.map((e) => e.id));
    await waitFor(async () => (await cmms(b)).pending === 0, 30_000, 'queue empty');

    // Delivered rows stay delivered across another crash: nothing is sent twice.
    await b.kill();
    const c = await spawn(url);
    const late = (await api(c, 'POST', '/api/tickets', { title: 'After the second crash', site: 'plant-1' }))
      .id;
    await waitFor(() => receiver!.acceptedKeys().size === 5, 60_000, 'the new event delivered');
    const lastBody = JSON.parse(receiver.received.at(-1)!.body) as { ticket: { id: string } };
    expect(lastBody.ticket.id).toBe(late);
    for (const [key, n] of receiver.acceptedKeys()) expect(n, key).toBe(1);
    expect(receiver.received.filter((r) => r.status === 200)).toHaveLength(5);
    await c.stop();

    // The secret came from the environment and never reached the log.
    for (const p of procs) expect(p.output()).not.toContain(SECRET);
    expect(procs.map((p) => p.output()).join('')).toContain('notification not delivered, will retry');
  }, 180_000);

  it('stops start-up with exit code 2 and the key path when a secret variable is missing', async () => {
    const file = join(dataDir, 'bad-notifications.yaml');
    writeFileSync(
      file,
      [
        'notifications:',
        '  webhooks:',
        '    - { name: cmms, url: "http://127.0.0.1:9/hook", secretEnv: FGW_TEST_ABSENT_SECRET }',
        '  inbound: { enabled: true }',
        '',
      ].join('\n'),
    );
    const { code, out } = await runGatewayCli(['--config', file, '--check-config'], {
      FGW_TEST_ABSENT_SECRET: '',
    });
    expect(code, out).toBe(2);
    expect(out).toContain(
      'notifications.webhooks.0.secretEnv: environment variable FGW_TEST_ABSENT_SECRET must be set to at least 16 characters',
    );
    expect(out).toContain('notifications.inbound.secrets: needed when inbound is enabled');
  }, 60_000);
});
