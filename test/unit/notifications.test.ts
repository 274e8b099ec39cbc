import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openDb } from '../../gateway/src/storage/db.js';
import { WORKORDER_MIGRATIONS, WorkOrderService } from '../../gateway/src/workorders/index.js';
import {
  NOTIFY_MIGRATIONS,
  notificationsSchema,
  NotifyQueue,
  sign,
  verdictOf,
  verify,
  webhookSchema,
} from '../../gateway/src/notifications/index.js';
import { WebhookChannel } from '../../gateway/src/notifications/channels.js';
import { configSchema } from '../../gateway/src/config/schema.js';
import type { ChannelRoute } from '../../gateway/src/notifications/queue.js';

const SECRET = 'a-shared-secret-of-some-length';
const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const TS = String(NOW / 1000);

describe('signing', () => {
  it('is HMAC-SHA256 over "<timestamp>.<body>", hex, prefixed sha256=', () => {
    const body = '{"id":"evt_1"}';
    const want = createHmac('sha256', SECRET).update(`${TS}.${body}`).digest('hex');
    expect(sign(SECRET, TS, body)).toBe(`sha256=${want}`);
  });

  it('verifies a good signature, with any of several secrets (rotation)', () => {
    const body = '{"a":1}';
    const h = { timestamp: TS, signature: sign(SECRET, TS, body) };
    expect(verify([SECRET], h, body, 300, NOW)).toEqual({ ok: true });
    expect(verify(['another-secret-0123456789', SECRET], h, body, 300, NOW)).toEqual({ ok: true });
  });

  it('refuses a changed body, a wrong secret, a changed timestamp', () => {
    const body = '{"a":1}';
    const sig = sign(SECRET, TS, body);
    expect(verify([SECRET], { timestamp: TS, signature: sig }, '{"a":2}', 300, NOW)).toMatchObject({
      ok: false,
      reason: 'mismatch',
    });
    expect(
      verify(['wrong-secret-0123456789'], { timestamp: TS, signature: sig }, body, 300, NOW),
    ).toMatchObject({
      ok: false,
      reason: 'mismatch',
    });
    const ts2 = String(Number(TS) + 1);
    expect(verify([SECRET], { timestamp: ts2, signature: sig }, body, 300, NOW)).toMatchObject({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('refuses stale and future timestamps outside the window', () => {
    const body = '{}';
    const old = String(Number(TS) - 301);
    expect(
      verify([SECRET], { timestamp: old, signature: sign(SECRET, old, body) }, body, 300, NOW),
    ).toMatchObject({
      ok: false,
      reason: 'stale',
    });
    const future = String(Number(TS) + 400);
    expect(
      verify([SECRET], { timestamp: future, signature: sign(SECRET, future, body) }, body, 300, NOW),
    ).toMatchObject({ ok: false, reason: 'stale' });
    const edge = String(Number(TS) - 299);
    expect(
      verify([SECRET], { timestamp: edge, signature: sign(SECRET, edge, body) }, body, 300, NOW).ok,
    ).toBe(true);
  });

  it('names missing and malformed headers', () => {
    expect(verify([SECRET], { timestamp: undefined, signature: 'sha256=00' }, '', 300, NOW)).toMatchObject({
      reason: 'missing',
    });
    expect(verify([SECRET], { timestamp: TS, signature: undefined }, '', 300, NOW)).toMatchObject({
      reason: 'missing',
    });
    expect(
      verify([SECRET], { timestamp: '2026-01-01', signature: sign(SECRET, TS, '') }, '', 300, NOW),
    ).toMatchObject({
      reason: 'malformed',
    });
    expect(verify([SECRET], { timestamp: TS, signature: 'md5=abc' }, '', 300, NOW)).toMatchObject({
      reason: 'malformed',
    });
  });
});

describe('delivery verdict', () => {
  it('classifies statuses: 2xx delivered, a refusal of the event dead, anything else (a misconfigured receiver too) retried', () => {
    expect(verdictOf(200)).toBe('delivered');
    expect(verdictOf(204)).toBe('delivered');
    for (const s of [400, 409, 413, 415, 422]) expect(verdictOf(s), String(s)).toBe('dead');
    for (const s of [301, 307, 401, 403, 404, 405, 408, 410, 429, 500, 503])
      expect(verdictOf(s), String(s)).toBe('retry');
  });
});

describe('config', () => {
  const issues = (v: unknown) => {
    const r = notificationsSchema.safeParse(v);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('is off by default', () => {
    const c = notificationsSchema.parse({});
    expect(c.webhooks).toEqual([]);
    expect(c.email.enabled).toBe(false);
    expect(c.inbound.enabled).toBe(false);
  });

  it('names the key path of each problem', () => {
    expect(issues({ webhooks: [{ name: 'cmms', url: 'ftp://x' }] })).toEqual(
      expect.arrayContaining([
        'webhooks.0.url: must be an http:// or https:// URL',
        'webhooks.0.secret: needs exactly one of secret or secretEnv',
      ]),
    );
    expect(issues({ webhooks: [{ name: 'a', url: 'http://x', secret: 'short' }] })).toEqual([
      'webhooks.0.secret: must be at least 16 characters',
    ]);
    expect(
      issues({ webhooks: [{ name: 'a', url: 'http://x', secretEnv: 'FGW_TEST_UNSET_SECRET' }] }),
    ).toEqual([
      'webhooks.0.secretEnv: environment variable FGW_TEST_UNSET_SECRET must be set to at least 16 characters',
    ]);
    expect(
      issues({
        webhooks: [
          { name: 'a', url: 'http://x', secret: SECRET },
          { name: 'a', url: 'http://y', secret: SECRET },
        ],
      }),
    ).toEqual(['webhooks.1.name: duplicate (also webhooks.0)']);
    expect(issues({ inbound: { enabled: true } })).toEqual([
      'inbound.secrets: needed when inbound is enabled',
    ]);
    expect(issues({ webhooks: [{ name: 'a', url: 'http://x', secret: SECRET, colour: 1 }] })[0]).toMatch(
      /^webhooks\.0: /,
    );
  });

  it('escalation contacts: a named webhook must exist, an email needs email on; mail may go to contacts only', () => {
    const problems = (v: unknown) => {
      const r = configSchema.safeParse(v);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(problems({ notifications: { email: { enabled: true } } })).toEqual([
      'notifications.email.to: email is enabled but has no recipients (to, byPriority, safety or a contact email)',
    ]);
    const contacts = [
      { name: 'on-call', email: 'oncall@plant.example', webhook: 'chat' },
      { name: 'manager' },
    ];
    expect(problems({ workorders: { contacts } })).toEqual([
      'workorders.contacts.0.webhook: no webhook named chat under notifications.webhooks',
      'workorders.contacts.0.email: needs notifications.email.enabled (and its smtp settings)',
    ]);
    expect(
      problems({
        workorders: { contacts },
        notifications: {
          email: { enabled: true },
          webhooks: [{ name: 'chat', url: 'http://x', secret: SECRET, contactsOnly: true }],
        },
      }),
    ).toEqual([]);
    expect(problems({ workorders: { contacts: [{ name: 'x', email: 'not an address' }] } })[0]).toMatch(
      /^workorders\.contacts\.0\.email: /,
    );
  });

  it('takes secrets from the environment', () => {
    process.env.FGW_TEST_SET_SECRET = SECRET;
    try {
      expect(
        issues({ webhooks: [{ name: 'a', url: 'http://x', secretEnv: 'FGW_TEST_SET_SECRET' }] }),
      ).toEqual([]);
    } finally {
      delete process.env.FGW_TEST_SET_SECRET;
    }
  });
});

describe('webhook filters', () => {
  it('takes events by type, priority and class', async () => {
    const db = openDb(':memory:', [...WORKORDER_MIGRATIONS, ...NOTIFY_MIGRATIONS]);
    const wo = new WorkOrderService({ db, now: () => NOW });
    await wo.start();
    const routine = wo.create({ title: 'a', site: 's1' }, 'eve');
    const safety = wo.create({ title: 'b', site: 's1', class: 'safety' }, 'eve');
    const ev = (t: typeof routine, type: 'created' | 'updated') => ({ type, ticket: t, entries: t.history });
    const hook = (extra: Record<string, unknown>) =>
      new WebhookChannel(
        webhookSchema.parse({ name: 'h', url: 'http://127.0.0.1:9/', secret: SECRET, ...extra }),
      );
    expect(hook({}).wants(ev(routine, 'updated'))).toEqual({});
    expect(hook({ events: ['ticket.created'] }).wants(ev(routine, 'updated'))).toBe(false);
    expect(hook({ classes: ['safety'] }).wants(ev(routine, 'created'))).toBe(false);
    expect(hook({ classes: ['safety'] }).wants(ev(safety, 'created'))).toEqual({});
    expect(hook({ priorities: ['critical'] }).wants(ev(safety, 'created'))).toEqual({});
    expect(hook({ priorities: ['critical'] }).wants(ev(routine, 'created'))).toBe(false);
    await wo.stop();
  });
});

describe('queue', () => {
  const all: ChannelRoute = { channel: 'webhook:all', wants: () => ({}) };
  const createdOnly: ChannelRoute = {
    channel: 'webhook:created',
    wants: (e) => (e.type === 'created' ? {} : false),
  };

  function setup(fail = false) {
    const db = openDb(':memory:', [...WORKORDER_MIGRATIONS, ...NOTIFY_MIGRATIONS]);
    const queue = new NotifyQueue(db);
    let clock = NOW;
    const wo = new WorkOrderService({
      db,
      now: () => clock,
      inTransaction: (events) => {
        queue.enqueue(events, [all, createdOnly], clock);
        if (fail) throw new Error('disk full');
      },
    });
    return { db, queue, wo, tick: (ms: number) => (clock += ms) };
  }

  it('queues one row per event and channel with the ticket change, one id per event', async () => {
    const { queue, wo, tick } = setup();
    await wo.start();
    const t = wo.create({ title: 'Leak in plant room', site: 's1' }, 'eve');
    tick(1000);
    wo.act(t.id, { action: 'acknowledge', actor: 'eve' });
    const rows = queue.list('pending', undefined, 100).reverse();
    expect(rows.map((r) => [r.channel, r.event])).toEqual([
      ['webhook:all', 'ticket.created'],
      ['webhook:created', 'ticket.created'],
      ['webhook:all', 'ticket.updated'],
    ]);
    expect(rows[0]!.eventId).toBe(rows[1]!.eventId);
    expect(rows[0]!.eventId).not.toBe(rows[2]!.eventId);
    const body = JSON.parse(rows[2]!.body) as Record<string, unknown>;
    expect(body).toMatchObject({
      id: rows[2]!.eventId,
      type: 'ticket.updated',
      ticket: { id: t.id, status: 'acknowledged' },
      changes: [{ actor: 'eve', action: 'acknowledge', from: 'open', to: 'acknowledged' }],
    });
    expect(queue.head('webhook:all')!.seq).toBe(rows[0]!.seq);
    await wo.stop();
  });

  it('skips a change without an audit line', async () => {
    const { queue, wo } = setup();
    await wo.start();
    const t = wo.create({ title: 'a', site: 's1' }, 'eve');
    expect(queue.enqueue([{ type: 'updated', ticket: t, entries: [] }], [all], NOW)).toBe(0);
    expect(queue.list('pending', 'webhook:all', 10)).toHaveLength(1);
    await wo.stop();
  });

  it('a failed enqueue rolls the ticket change back: neither is stored', async () => {
    const { db, queue, wo } = setup(true);
    await wo.start();
    expect(() => wo.create({ title: 'x', site: 's1' }, 'eve')).toThrow('disk full');
    expect((db.prepare('SELECT COUNT(*) AS n FROM tickets').get() as { n: number }).n).toBe(0);
    expect(queue.list('pending', undefined, 10)).toEqual([]);
    await wo.stop();
  });

  it('marks, parks, retries and archives only delivered rows, keeping them', async () => {
    const { queue, wo } = setup();
    await wo.start();
    wo.create({ title: 'a', site: 's1' }, 'eve');
    wo.create({ title: 'b', site: 's1' }, 'eve');
    const [first, second] = queue.list('pending', 'webhook:all', 10).reverse();
    queue.markRetry(first!.seq, 503, 'receiver answered 503', NOW + 5000);
    expect(queue.head('webhook:all')).toMatchObject({ seq: first!.seq, attempts: 1, nextAt: NOW + 5000 });
    queue.markDelivered(first!.seq, 200, NOW + 6000);
    queue.markDead(second!.seq, 400, 'receiver answered 400');
    expect(queue.head('webhook:all')).toBeUndefined();
    expect(queue.stats().get('webhook:all')).toMatchObject({ pending: 0, dead: 1, delivered: 1 });
    expect(queue.archiveDelivered(NOW + 6000, NOW + 7000)).toBe(0);
    expect(queue.archiveDelivered(NOW + 7000, NOW + 7000)).toBe(1);
    expect(queue.archiveDelivered(NOW + 10 ** 12, NOW + 7000)).toBe(0);
    // Out of the queue (its indexes stay small), into the archive with what was sent.
    expect(queue.list('delivered', undefined, 10)).toEqual([]);
    const [sent] = queue.archived('webhook:all', first!.ticketId, 10);
    expect(sent).toMatchObject({
      seq: first!.seq,
      eventId: first!.eventId,
      body: first!.body,
      lastStatus: 200,
      deliveredAt: NOW + 6000,
      attempts: 2,
    });
    expect(queue.archived(undefined, 'WO-999999', 10)).toEqual([]);
    const back = queue.retry(second!.seq, NOW + 8000);
    expect(back).toMatchObject({
      state: 'pending',
      attempts: 0,
      queuedAt: NOW + 8000,
      eventId: second!.eventId,
    });
    expect(queue.retry(second!.seq, NOW + 9000)).toBeUndefined();
    await wo.stop();
  });

  it('remembers inbound idempotency keys once; old ones move to the archive', () => {
    const { db, queue } = setup();
    expect(queue.rememberInbound('k1', 'WO-000001', 'acknowledge', NOW)).toBe(true);
    expect(queue.rememberInbound('k1', 'WO-000001', 'acknowledge', NOW)).toBe(false);
    expect(queue.archiveInbound(NOW, NOW + 5)).toBe(0);
    expect(queue.archiveInbound(NOW + 1, NOW + 5)).toBe(1);
    expect(db.prepare('SELECT * FROM notify_inbound_seen').all()).toEqual([
      {
        idempotency_key: 'k1',
        received_at: NOW,
        ticket_id: 'WO-000001',
        action: 'acknowledge',
        archived_at: NOW + 5,
      },
    ]);
    expect(queue.rememberInbound('k1', 'WO-000001', 'acknowledge', NOW)).toBe(true);
  });
});
