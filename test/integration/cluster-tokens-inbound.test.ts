import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sign } from '../../gateway/src/notifications/sign.js';
import { ADMIN_TOKEN, spawnGateway, type GatewayProcess } from '../fixtures/gateway.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';

const INBOUND = 'cluster-inbound-secret-0123456789';

interface Answer {
  status: number;
  holder: string | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the test reads loose JSON answers
  json: Record<string, any>;
}

async function call(
  url: string,
  method: string,
  path: string,
  token: string,
  body?: unknown,
): Promise<Answer> {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return {
    status: r.status,
    holder: r.headers.get('x-gateway-holder'),
    json: (await r.json()) as Answer['json'],
  };
}

/** The CMMS: a signed inbound webhook with its idempotency key. */
async function inbound(url: string, body: unknown, key: string, secret = INBOUND): Promise<Answer> {
  const raw = JSON.stringify(body);
  const ts = Math.floor(Date.now() / 1000);
  const r = await fetch(`${url}/api/webhooks/inbound`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'idempotency-key': key,
      'x-gateway-timestamp': String(ts),
      'x-gateway-signature': sign(secret, ts, raw),
    },
    body: raw,
  });
  return {
    status: r.status,
    holder: r.headers.get('x-gateway-holder'),
    json: (await r.json()) as Answer['json'],
  };
}

/**
 * API tokens shared by the cluster (ADR 0165) and the inbound CMMS webhook reaching the ticket's
 * holder (ADR 0166), on real servers: two gateways as child processes on one PostgreSQL and one
 * Mosquitto.
 */
describe('cluster: shared API tokens and the inbound webhook', () => {
  let pg: Postgres;
  let mosq: Mosquitto;
  const dirs: string[] = [];
  let a: GatewayProcess;
  let b: GatewayProcess;

  function config(instanceId: string) {
    const dataDir = mkdtempSync(join(tmpdir(), `fgw-tokens-${instanceId}-`));
    dirs.push(dataDir);
    return {
      dataDir,
      storage: { postgres: pg.url },
      cluster: { instanceId, partitions: 4, failoverMs: 10_000 },
      mqtt: { url: mosq.url, keepaliveSec: 5 },
      influx: { enabled: false },
      notifications: { inbound: { enabled: true, secrets: [INBOUND] } },
    };
  }

  /** A ticket raised by hand on `g` (held by it), once the other instance's view shows it. */
  async function raise(g: GatewayProcess, other: GatewayProcess, title: string): Promise<string> {
    const r = await call(g.url, 'POST', '/api/tickets', ADMIN_TOKEN, {
      title,
      site: 'plant-1',
      class: 'routine',
    });
    expect(r.status).toBe(201);
    const id = r.json.id as string;
    await waitFor(
      async () => (await call(other.url, 'GET', `/api/tickets/${id}`, ADMIN_TOKEN)).status === 200,
      15_000,
      `ticket ${id} in the view`,
    );
    return id;
  }

  beforeAll(async () => {
    [pg, mosq] = await Promise.all([startPostgres(), startMosquitto()]);
    a = await spawnGateway(config('gw-a'));
    b = await spawnGateway(config('gw-b'));
  }, 120_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([pg?.close(), mosq?.stop()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  afterEach(() => {
    for (const g of [a, b])
      if (g && g.proc.exitCode !== null) throw new Error(`gateway ${g.url} exited:\n${g.output()}`);
  });

  it('a token created on A works on B, forwards an action to A, and once revoked on B is refused on A', async () => {
    const created = await call(a.url, 'POST', '/api/admin/tokens', ADMIN_TOKEN, {
      name: 'shift-laptop',
      role: 'engineer',
    });
    expect(created.status).toBe(201);
    const token = created.json.token as string;
    expect((await call(b.url, 'GET', '/api/devices', token)).status).toBe(200);
    const listed = await call(b.url, 'GET', '/api/admin/tokens', ADMIN_TOKEN);
    expect(listed.json.tokens.map((t: { name: string }) => t.name)).toContain('shift-laptop');

    // A ticket A holds, acknowledged on B with the token: forwarded to A (ADR 0157), accepted there.
    const id = await raise(a, b, 'Pressure low on block B');
    const ack = await call(b.url, 'POST', `/api/tickets/${id}/actions`, token, { action: 'acknowledge' });
    expect(ack.status).toBe(200);
    expect(ack.holder).toBe('gw-a');
    expect(ack.json).toMatchObject({ status: 'acknowledged' });
    expect(ack.json.history.at(-1)).toMatchObject({ actor: 'shift-laptop', action: 'acknowledge' });

    const revoked = await call(b.url, 'POST', '/api/admin/tokens/shift-laptop/revoke', ADMIN_TOKEN);
    expect(revoked.status).toBe(200);
    // Checked in PostgreSQL on each request: refused on A from the very next request (no delay).
    const refused = await call(a.url, 'GET', '/api/devices', token);
    expect(refused.status).toBe(401);
    expect(refused.json.error.code).toBe('GW_ERR_UNAUTHORIZED');
    expect((await call(b.url, 'GET', '/api/devices', token)).status).toBe(401);
  });

  it("an inbound webhook sent to B acts once on A's ticket; its key is a replay on either instance", async () => {
    const id = await raise(a, b, 'Leak in basement');
    const body = { ticketId: id, action: 'acknowledge', actor: 'alice', externalRef: 'SR-9001' };
    const first = await inbound(b.url, body, 'sr-9001-ack');
    expect(first.status).toBe(200);
    expect(first.holder).toBe('gw-a');
    expect(first.json).toMatchObject({ id, status: 'acknowledged' });

    // Applied on A, visible in B's view.
    const onA = await call(a.url, 'GET', `/api/tickets/${id}`, ADMIN_TOKEN);
    expect(onA.json.status).toBe('acknowledged');
    await waitFor(
      async () =>
        (await call(b.url, 'GET', `/api/tickets/${id}`, ADMIN_TOKEN)).json.status === 'acknowledged',
      15_000,
      'acknowledged in the view',
    );

    // The same key again, freshly signed, on A (the holder) and on B: a replay, nothing applied.
    for (const g of [a, b]) {
      const again = await inbound(g.url, { ...body, action: 'comment', note: 'again' }, 'sr-9001-ack');
      expect(again.status).toBe(409);
      expect(again.json.error.code).toBe('GW_ERR_WEBHOOK_REPLAY');
      // Answered where it was sent, from the shared keys: not forwarded (a holder that is gone, or a
      // ticket's next holder, could not tell).
      expect(again.holder).toBeNull();
    }
    const history = (await call(a.url, 'GET', `/api/tickets/${id}`, ADMIN_TOKEN)).json.history as {
      actor: string;
    }[];
    expect(history.filter((h) => h.actor === 'cmms:alice')).toHaveLength(1);

    // The holder checks the signature itself: a request claiming to be forwarded is not trusted.
    const forged = await fetch(`${a.url}/api/webhooks/inbound`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': 'forged-1',
        'x-gateway-forwarded-by': 'gw-b',
        'x-gateway-timestamp': String(Math.floor(Date.now() / 1000)),
        'x-gateway-signature': `sha256=${'0'.repeat(64)}`,
      },
      body: JSON.stringify({ ...body, action: 'comment', note: 'forged' }),
    });
    expect(forged.status).toBe(401);
    // A wrong secret is refused on B before anything is forwarded.
    const wrong = await inbound(b.url, { ...body, action: 'comment' }, 'sr-9001-c', 'not-the-secret');
    expect(wrong.status).toBe(401);
    expect(wrong.holder).toBeNull();
  });
  it('while PostgreSQL is down an API token answers 503 (not 401), a config token still works', async () => {
    const made = await call(a.url, 'POST', '/api/admin/tokens', ADMIN_TOKEN, {
      name: 'historian',
      role: 'viewer',
    });
    expect(made.status).toBe(201);
    const token = made.json.token as string;
    await pg.kill();
    try {
      const during = await call(b.url, 'GET', '/api/devices', token);
      expect(during.status).toBe(503);
      expect(during.json.error.code).toBe('GW_ERR_UNAVAILABLE');
      expect(during.json.error.message).toMatch(/shared token table/);
      expect((await call(b.url, 'GET', '/api/devices', ADMIN_TOKEN)).status).toBe(200);
    } finally {
      await pg.start();
    }
    await waitFor(
      async () => (await call(b.url, 'GET', '/api/devices', token)).status === 200,
      30_000,
      'the token works again once PostgreSQL is back',
    );
  }, 60_000);
});
