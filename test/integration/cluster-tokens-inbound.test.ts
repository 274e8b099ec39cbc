import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sign } from '../../gateway/src/notifications/sign.js';
import { ADMIN_TOKEN, spawnGateway, type GatewayProcess } from '../fixtures/gateway.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import pgClient from 'pg';
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

  it('a token created on A works on B, forwards an action to A, and once revoked on B is refused on A within a second', async () => {
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

    // A has the token cached now (it authorised the forwarded acknowledgement and this read).
    expect((await call(a.url, 'GET', '/api/devices', token)).status).toBe(200);
    const revoked = await call(b.url, 'POST', '/api/admin/tokens/shift-laptop/revoke', ADMIN_TOKEN);
    expect(revoked.status).toBe(200);
    // Refused on B at once, on A as soon as the NOTIFY of the revocation arrives (ADR 0175).
    expect((await call(b.url, 'GET', '/api/devices', token)).status).toBe(401);
    await waitFor(
      async () => (await call(a.url, 'GET', '/api/devices', token)).status === 401,
      1000,
      'revocation heard on A',
    );
    const refused = await call(a.url, 'GET', '/api/devices', token);
    expect(refused.json.error.code).toBe('GW_ERR_UNAUTHORIZED');
  });

  it('an unknown bearer sent 100 times is 401 each time and costs at most a handful of PostgreSQL queries', async () => {
    const metric = async (name: string) => {
      const text = await (await fetch(`${b.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(name));
      return Number(line?.split(' ').at(-1) ?? NaN);
    };
    const queries = 'gateway_api_token_lookups_total{result="query"}';
    const q0 = await metric(queries);
    const r0 = await metric('gateway_api_token_refused_total');
    const made = 'not-a-token-' + 'x'.repeat(20);
    for (let i = 0; i < 100; i++) {
      const r = await call(b.url, 'GET', '/api/devices', made);
      expect(r.status).toBe(401);
    }
    // One query, then the miss is cached for 2 s (a slow machine may need a few).
    expect((await metric(queries)) - q0).toBeLessThanOrEqual(5);
    expect((await metric('gateway_api_token_refused_total')) - r0).toBe(100);
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
  it('a key delivered to A and B at once is applied once; a refused action gives its key back', async () => {
    const id = await raise(a, b, 'Valve stuck open');
    const body = { ticketId: id, action: 'acknowledge', actor: 'bob', externalRef: 'SR-7' };
    const both = await Promise.all([inbound(a.url, body, 'sr-7-ack'), inbound(b.url, body, 'sr-7-ack')]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(both.find((r) => r.status === 409)!.json.error.code).toBe('GW_ERR_WEBHOOK_REPLAY');
    const history = (await call(a.url, 'GET', `/api/tickets/${id}`, ADMIN_TOKEN)).json.history as {
      actor: string;
    }[];
    expect(history.filter((h) => h.actor === 'cmms:bob')).toHaveLength(1);

    // Refused by the state machine: nothing applied, the key released, so a corrected retry applies.
    const refused = await inbound(b.url, { ...body, action: 'close' }, 'sr-7-next');
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe('GW_ERR_TICKET_TRANSITION');
    const retried = await inbound(b.url, { ...body, action: 'comment', note: 'on site' }, 'sr-7-next');
    expect(retried.status).toBe(200);
    expect(retried.json.history.at(-1)).toMatchObject({ actor: 'cmms:bob', action: 'comment' });
  });

  it('a key claimed by a holder that died before applying it is applied by the next delivery, not answered "used already"', async () => {
    const id = await raise(a, b, 'Chlorine dosing stopped');
    const body = { ticketId: id, action: 'acknowledge', actor: 'carol', externalRef: 'SR-31' };
    // A holder killed between its claim and its commit leaves a claim never confirmed (ADR 0176).
    const db = new pgClient.Client({ connectionString: pg.url });
    await db.connect();
    try {
      const claimOf = (key: string, at: number) =>
        db.query(
          `insert into inbound_keys (key, ticket_id, action, instance_id, applied_at)
           values ($1, $2, 'acknowledge', 'gw-gone', $3)`,
          [key, id, at],
        );
      // A minute and more ago: abandoned. The CMMS's retry (to B, forwarded to A) applies it.
      await claimOf('sr-31-ack', Date.now() - 2 * 60_000);
      const retry = await inbound(b.url, body, 'sr-31-ack');
      expect(retry.status, JSON.stringify(retry.json)).toBe(200);
      expect(retry.json).toMatchObject({ id, status: 'acknowledged' });
      // Applied and confirmed: from now on a replay on either instance.
      const row = await db.query('select instance_id, confirmed_at from inbound_keys where key = $1', [
        'sr-31-ack',
      ]);
      expect(row.rows[0]).toMatchObject({ instance_id: 'gw-a' });
      expect(row.rows[0].confirmed_at).not.toBeNull();
      for (const g of [a, b]) {
        const again = await inbound(g.url, { ...body, action: 'comment', note: 'again' }, 'sr-31-ack');
        expect(again.status).toBe(409);
        expect(again.json.error.message).toContain('was used already');
      }
      // A claim of a moment ago is still being applied: 409, "being applied", nothing applied here.
      await claimOf('sr-31-note', Date.now() - 1000);
      const busy = await inbound(a.url, { ...body, action: 'comment', note: 'x' }, 'sr-31-note');
      expect(busy.status).toBe(409);
      expect(busy.json.error.message).toContain('being applied');
      const history = (await call(a.url, 'GET', `/api/tickets/${id}`, ADMIN_TOKEN)).json.history as {
        actor: string;
      }[];
      expect(history.filter((h) => h.actor === 'cmms:carol')).toHaveLength(1);
    } finally {
      await db.end();
    }
  });

  it('while PostgreSQL is down a recently used token still reads, an unknown one is 503, an inbound action is 503', async () => {
    const made = await call(a.url, 'POST', '/api/admin/tokens', ADMIN_TOKEN, {
      name: 'historian',
      role: 'viewer',
    });
    expect(made.status).toBe(201);
    const token = made.json.token as string;
    const other = await call(a.url, 'POST', '/api/admin/tokens', ADMIN_TOKEN, {
      name: 'contractor',
      role: 'engineer',
    });
    const revokedToken = other.json.token as string;
    expect((await call(b.url, 'GET', '/api/devices', token)).status).toBe(200);
    expect((await call(b.url, 'GET', '/api/devices', revokedToken)).status).toBe(200);
    // Revoked before the outage: B hears of it and forgets it.
    expect((await call(a.url, 'POST', '/api/admin/tokens/contractor/revoke', ADMIN_TOKEN)).status).toBe(200);
    await waitFor(
      async () => (await call(b.url, 'GET', '/api/devices', revokedToken)).status === 401,
      1000,
      'revocation heard on B',
    );
    const id = await raise(a, b, 'Fan belt worn');
    await pg.kill();
    try {
      expect((await call(b.url, 'GET', '/api/devices', token)).status).toBe(200);
      expect((await call(b.url, 'GET', '/api/devices', revokedToken)).status).not.toBe(200);
      const unknown = await call(b.url, 'GET', '/api/devices', 'never-seen-token-0123456789');
      expect(unknown.status).toBe(503);
      expect(unknown.json.error.code).toBe('GW_ERR_UNAVAILABLE');
      expect(unknown.json.error.message).toMatch(/shared token table/);
      expect((await call(b.url, 'GET', '/api/devices', ADMIN_TOKEN)).status).toBe(200);
      // The key cannot be claimed cluster-wide: 503 (retryable), nothing applied on the holder.
      const act = await inbound(a.url, { ticketId: id, action: 'acknowledge', actor: 'eve' }, 'sr-8-ack');
      expect(act.status).toBe(503);
      expect((await call(a.url, 'GET', `/api/tickets/${id}`, ADMIN_TOKEN)).json.status).toBe('open');
    } finally {
      await pg.start();
    }
    // Back: revocations apply on every instance again.
    await waitFor(
      async () =>
        (await call(a.url, 'POST', '/api/admin/tokens/historian/revoke', ADMIN_TOKEN)).status === 200,
      30_000,
      'revoked once PostgreSQL is back',
    );
    await waitFor(
      async () => (await call(b.url, 'GET', '/api/devices', token)).status === 401,
      5_000,
      'the revocation applies on B',
    );
    const retry = await inbound(a.url, { ticketId: id, action: 'acknowledge', actor: 'eve' }, 'sr-8-ack');
    expect(retry.status).toBe(200);
  }, 90_000);
});
