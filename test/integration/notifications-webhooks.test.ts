import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { startSmtpCapture, type CapturedMail, type SmtpCapture } from '../fixtures/smtp.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';
import { sign, verify, webhookSchema } from '../../gateway/src/notifications/index.js';
import { scheduleSchema } from '../../gateway/src/workorders/index.js';

/**
 * Ticket webhooks and email from the gateway in this process to real receivers on loopback: a
 * node:http receiver checking signatures as the documentation says, and smtp-server as the mail relay.
 */
const SECRET = 'outgoing-shared-secret-0123456789';
const CHAT_SECRET = 'chat-bridge-shared-secret-0123';
const MIN = 60_000;
const HOUR = 60 * MIN;
const INBOUND = 'inbound-shared-secret-0123456789';
const ENGINEER = 'engineer-token-0123456789';

type Gw = Awaited<ReturnType<typeof startGateway>>;

describe('ticket webhooks and email', () => {
  let gw: Gw;
  let receiver: WebhookReceiver;
  /** The on-call engineer's chat, reached only by escalations to that contact. */
  let chat: WebhookReceiver;
  let smtp: SmtpCapture;
  let mails: CapturedMail[] = [];

  const api = async (method: string, path: string, body?: unknown, token = ENGINEER) => {
    const r = await fetch(`${gw.httpUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, json: (await r.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- test reads loose JSON
  };
  const createTicket = async (title: string, cls = 'routine') => {
    const r = await api('POST', '/api/tickets', { title, site: 'plant-1', class: cls });
    expect(r.status).toBe(201);
    return r.json.id as string;
  };
  const deliveredFor = (ticketId: string) =>
    receiver.received.filter(
      (r) => r.status < 300 && (JSON.parse(r.body) as { ticket: { id: string } }).ticket.id === ticketId,
    );
  const channel = () =>
    (gw.health().notifications as unknown as { channels: Record<string, Record<string, unknown>> }).channels[
      'webhook:cmms'
    ]!;

  beforeAll(async () => {
    receiver = new WebhookReceiver(SECRET, await freePort());
    await receiver.start();
    chat = new WebhookReceiver(CHAT_SECRET, await freePort());
    await chat.start();
    smtp = await startSmtpCapture();
    mails = smtp.mails;
    const smtpPort = smtp.port;
    gw = await startGateway(
      testConfig({
        influx: { enabled: false },
        http: { tokens: [{ name: 'eve', role: 'engineer', token: ENGINEER }] },
        workorders: {
          contacts: [
            { name: 'on-call engineer', email: 'oncall-contact@plant.example', webhook: 'chat' },
            { name: 'shift supervisor', email: 'supervisor@plant.example' },
            { name: 'facility manager' },
          ],
        },
        notifications: {
          pollMs: 200,
          webhooks: [
            webhookSchema.parse({
              name: 'cmms',
              url: receiver.url,
              secret: SECRET,
              retry: { minMs: 100, maxMs: 400 },
            }),
            webhookSchema.parse({
              name: 'chat',
              url: chat.url,
              secret: CHAT_SECRET,
              contactsOnly: true,
              retry: { minMs: 100, maxMs: 400 },
            }),
          ],
          email: {
            enabled: true,
            smtp: { host: '127.0.0.1', port: smtpPort, secure: false },
            from: 'gateway@plant.example',
            to: ['desk@plant.example'],
            safety: ['oncall@plant.example', 'manager@plant.example'],
            events: ['ticket.created'],
            retry: { minMs: 100, maxMs: 400 },
          },
          inbound: { enabled: true, secrets: [INBOUND] },
        },
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await gw?.cleanup();
    await receiver?.stop();
    await chat?.stop();
    await smtp?.close();
  });

  it('delivers a new ticket, signed, with its idempotency key and event headers', async () => {
    const id = await createTicket('Chlorine dosing pump noisy');
    const r = await waitFor(() => deliveredFor(id)[0], 20_000, 'delivery');
    expect(r!.signatureValid).toBe(true);
    const body = JSON.parse(r!.body) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- payload under test
    expect(r!.headers['idempotency-key']).toBe(body.id);
    expect(body.id).toMatch(/^evt_[0-9a-f-]{36}$/);
    expect(r!.headers['x-gateway-event']).toBe('ticket.created');
    expect(r!.headers['content-type']).toBe('application/json');
    expect(body).toMatchObject({
      type: 'ticket.created',
      ticket: { id, status: 'open', site: 'plant-1', title: 'Chlorine dosing pump noisy' },
      changes: [{ actor: 'eve', action: 'create', to: 'open' }],
    });
    expect(body.ticket.history).toBeUndefined();
    // The gateway's own check (the one its inbound webhook uses) takes the request as sent, and only it:
    // the signature covers the timestamp and every byte of the body, under this secret.
    const ts = String(r!.headers['x-gateway-timestamp']);
    const sig = String(r!.headers['x-gateway-signature']);
    const check = (secret: string, t: string, b: string) =>
      verify([secret], { timestamp: t, signature: sig }, b, 300, Date.now());
    expect(check(SECRET, ts, r!.body)).toEqual({ ok: true });
    expect(check('another-secret-0123456789', ts, r!.body)).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(check(SECRET, String(Number(ts) - 1), r!.body)).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(check(SECRET, ts, r!.body.replace('noisy', 'quiet'))).toMatchObject({
      ok: false,
      reason: 'mismatch',
    });
    expect(check(SECRET, String(Number(ts) - 3600), r!.body)).toMatchObject({ ok: false, reason: 'stale' });
  });

  it('retries while the receiver is down (connection refused, then 503) and delivers each event once, in order', async () => {
    await receiver.stop();
    const id = await createTicket('Door contact faulty');
    const ack = await api('POST', `/api/tickets/${id}/actions`, { action: 'acknowledge' });
    expect(ack.status).toBe(200);
    await waitFor(
      () => (channel().failures as number) >= 2 && (channel().pending as number) >= 2,
      20_000,
      'refused attempts',
    );
    expect(String(channel().lastError)).toContain('ECONNREFUSED');
    expect(gw.health().notifications!.state).toBe('degraded');

    receiver.script.push({ status: 503, headers: { 'retry-after': '1' } }, { status: 503 });
    await receiver.start();
    await waitFor(
      () => deliveredFor(id).length >= 2 && channel().pending === 0,
      30_000,
      'delivery after outage',
    );
    const bodies = deliveredFor(id).map((r) => JSON.parse(r.body) as { type: string; id: string });
    expect(bodies.map((b) => b.type)).toEqual(['ticket.created', 'ticket.updated']);
    expect(receiver.received.filter((r) => r.status === 503)).toHaveLength(2);
    // The refused attempts carried the same key as the accepted one: nothing new was invented per attempt.
    const retried = receiver.received
      .filter((r) => r.status === 503)
      .map((r) => r.headers['idempotency-key']);
    expect(retried.every((k) => k === bodies[0]!.id)).toBe(true);
    for (const [key, n] of receiver.acceptedKeys()) expect(n, key).toBe(1);
    expect(receiver.received.every((r) => r.signatureValid)).toBe(true);
    expect(gw.health().notifications!.state).toBe('ok');
  }, 60_000);

  it('a misconfigured receiver (401) holds the line: retried with backoff, shown in health and metrics, nothing overtakes', async () => {
    await waitFor(() => channel().pending === 0, 20_000, 'empty queue');
    const deadBefore = channel().dead as number;
    receiver.defaultStatus = 401;
    try {
      const first = await createTicket('Sent while the CMMS refuses our key');
      const second = await createTicket('Queued behind it');
      const refused = () =>
        receiver.received.filter(
          (r) => r.status === 401 && (JSON.parse(r.body) as { ticket: { id: string } }).ticket.id === first,
        );
      await waitFor(() => refused().length >= 3, 20_000, 'retried 401s');
      // Only the head was tried: the second event waits behind it, nothing was parked.
      expect(
        receiver.received.some(
          (r) => (JSON.parse(r.body) as { ticket: { id: string } }).ticket.id === second,
        ),
      ).toBe(false);
      expect(new Set(refused().map((r) => r.headers['idempotency-key'])).size).toBe(1);
      const ch = channel();
      expect(ch).toMatchObject({ lastStatus: 401, dead: deadBefore });
      expect(ch.pending).toBeGreaterThanOrEqual(2);
      expect(ch.headAttempts).toBeGreaterThanOrEqual(3);
      expect(Date.parse(String(ch.blockedSince))).toBeLessThanOrEqual(Date.now());
      expect(String(ch.lastError)).toContain('receiver answered 401');
      expect(gw.health().notifications!.state).toBe('degraded');
      const metrics = await (await fetch(`${gw.httpUrl}/metrics`)).text();
      expect(metrics).toMatch(/gateway_notify_last_status\{channel="webhook:cmms"\} 401/);
      expect(metrics).toMatch(/gateway_notify_head_attempts\{channel="webhook:cmms"\} [3-9]/);
      expect(metrics).toMatch(/gateway_notify_blocked_seconds\{channel="webhook:cmms"\} [0-9.e-]+/);
      expect(metrics).not.toMatch(/gateway_notify_blocked_seconds\{channel="webhook:cmms"\} 0\n/);

      // The receiver's key is fixed: both go through, in order, once each.
      receiver.defaultStatus = 200;
      await waitFor(() => deliveredFor(second).length === 1, 20_000, 'both delivered');
      const accepted = receiver.received
        .filter((r) => r.status === 200)
        .map((r) => (JSON.parse(r.body) as { ticket: { id: string } }).ticket.id);
      expect(accepted.indexOf(first)).toBeLessThan(accepted.indexOf(second));
      expect(deliveredFor(first)).toHaveLength(1);
      expect(channel()).toMatchObject({
        headAttempts: 0,
        blockedSince: null,
        lastStatus: 200,
        dead: deadBefore,
      });
    } finally {
      receiver.defaultStatus = 200;
    }
  }, 60_000);

  it('parks an event the receiver refuses (400) as dead, goes on with the next, and an admin puts it back', async () => {
    receiver.script.push({ status: 400 });
    const bad = await createTicket('Refused by the CMMS');
    const next = await createTicket('Accepted after the refused one');
    await waitFor(() => deliveredFor(next).length === 1, 20_000, 'next event delivered');
    const dead = await api('GET', '/api/admin/notifications?state=dead', undefined, ADMIN_TOKEN);
    expect(dead.status).toBe(200);
    const row = (dead.json.events as Array<Record<string, unknown>>).find((e) => e.ticketId === bad)!;
    expect(row).toMatchObject({
      channel: 'webhook:cmms',
      event: 'ticket.created',
      state: 'dead',
      lastStatus: 400,
    });
    expect(String(row.lastError)).toContain('400');
    expect(deliveredFor(bad)).toHaveLength(0);
    expect((await api('GET', '/api/admin/notifications?state=dead')).status).toBe(403);
    const metrics = await (await fetch(`${gw.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/gateway_notify_dead\{channel="webhook:cmms"\} 1/);

    const retried = await api(
      'POST',
      `/api/admin/notifications/${String(row.seq)}/retry`,
      undefined,
      ADMIN_TOKEN,
    );
    expect(retried.status).toBe(200);
    expect(retried.json).toMatchObject({ state: 'pending', id: row.id });
    await waitFor(() => deliveredFor(bad).length === 1, 20_000, 'retried event delivered');
    expect(deliveredFor(bad)[0]!.headers['idempotency-key']).toBe(row.id);
    expect(
      (await api('POST', `/api/admin/notifications/${String(row.seq)}/retry`, undefined, ADMIN_TOKEN)).json,
    ).toEqual({
      error: {
        code: 'GW_ERR_NOTIFY_NOT_DEAD',
        message: `no dead notification with seq ${String(row.seq)}`,
        retryable: false,
      },
    });
  }, 60_000);

  it('shows queue depth, oldest age and attempts in /metrics and /api/health, and no secret', async () => {
    await waitFor(() => channel().pending === 0, 20_000, 'empty queue');
    const metrics = await (await fetch(`${gw.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/gateway_notify_queue_depth\{channel="webhook:cmms"\} 0/);
    expect(metrics).toMatch(/gateway_notify_oldest_pending_seconds\{channel="webhook:cmms"\} 0/);
    expect(metrics).toMatch(/gateway_notify_failures_total\{channel="webhook:cmms"\} [1-9]/);
    expect(metrics).toMatch(/gateway_notify_delivered_total\{channel="email"\} [0-9]/);
    const health = await (await fetch(`${gw.httpUrl}/api/health`)).text();
    expect(health).toContain('"webhook:cmms"');
    expect(health).not.toContain(SECRET);
    expect(health).not.toContain(INBOUND);
  });

  describe('inbound from the CMMS', () => {
    const post = async (
      body: unknown,
      opts: { key?: string; ts?: number; secret?: string; raw?: string } = {},
    ) => {
      const raw = opts.raw ?? JSON.stringify(body);
      const ts = opts.ts ?? Math.floor(Date.now() / 1000);
      const r = await fetch(`${gw.httpUrl}/api/webhooks/inbound`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': opts.key ?? `cmms-${Math.random()}`,
          'x-gateway-timestamp': String(ts),
          'x-gateway-signature': sign(opts.secret ?? INBOUND, ts, raw),
        },
        body: raw,
      });
      return { status: r.status, json: (await r.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- test reads loose JSON
    };

    it('applies a signed status change through the state machine, as cmms:<actor>', async () => {
      const id = await createTicket('Pressure low on block B');
      const r = await post(
        { ticketId: id, action: 'acknowledge', actor: 'alice', note: 'seen', externalRef: 'SR-4711' },
        { key: 'sr-4711-ack' },
      );
      expect(r.status).toBe(200);
      expect(r.json.status).toBe('acknowledged');
      const last = (r.json.history as Array<Record<string, unknown>>).at(-1)!;
      expect(last).toMatchObject({
        actor: 'cmms:alice',
        action: 'acknowledge',
        from: 'open',
        to: 'acknowledged',
      });
      expect(last.note).toBe('seen (CMMS ref SR-4711)');
      const assign = await post({ ticketId: id, action: 'assign', assignee: 'bob', actor: 'alice' });
      expect(assign.json).toMatchObject({ status: 'assigned', assignee: 'bob' });
      // Its change goes out like any other, naming the CMMS as the actor.
      await waitFor(
        () =>
          deliveredFor(id).some((d) =>
            (JSON.parse(d.body) as { changes: { actor: string }[] }).changes.some(
              (c) => c.actor === 'cmms:alice',
            ),
          ),
        20_000,
        'outgoing event of the inbound change',
      );

      // The same idempotency key again (a replay, even freshly signed) changes nothing.
      const replay = await post(
        { ticketId: id, action: 'comment', note: 'again', actor: 'alice' },
        { key: 'sr-4711-ack' },
      );
      expect(replay.status).toBe(409);
      expect(replay.json.error.code).toBe('GW_ERR_WEBHOOK_REPLAY');
      const t = await api('GET', `/api/tickets/${id}`);
      expect((t.json.history as Array<{ note: string | null }>).some((h) => h.note === 'again')).toBe(false);
    });

    it('resolves a tank disinfection with its completion form, validated as over HTTP; holds for a configured reason', async () => {
      const schedule = scheduleSchema.parse({
        id: 'tank-disinfection',
        title: 'Disinfect the water tank',
        kinds: ['chlorination'],
        every: { days: 10 },
        form: 'disinfection',
      });
      const pm = gw.workorders!.createMaintenance(
        schedule,
        { site: 'plant-1', device: 'tank-1' },
        Date.now(),
      );
      for (const b of [
        { action: 'acknowledge' },
        { action: 'assign', assignee: 'bob' },
        { action: 'hold', note: 'no disinfectant in stock', reason: 'waiting_for_parts' },
        { action: 'resume' },
        { action: 'start' },
      ]) {
        const r = await post({ ticketId: pm.id, actor: 'alice', ...b });
        expect(r.status, JSON.stringify(r.json)).toBe(200);
        if (b.action === 'hold') expect(r.json).toMatchObject({ onHold: true, clockPaused: true });
      }
      const noForm = await post({ ticketId: pm.id, action: 'resolve', actor: 'bob' });
      expect(noForm.status).toBe(400);
      expect(noForm.json.error.message).toContain('disinfection form');
      const badAmount = await post({
        ticketId: pm.id,
        action: 'resolve',
        actor: 'bob',
        form: { disinfectedAt: '2026-03-02T09:30:00+08:00', amount: 0, unit: 'kg' },
      });
      expect(badAmount.status).toBe(400);
      expect(badAmount.json.error.message).toContain('form.amount must be a positive number');
      // The same body checks as POST /api/tickets/:id/actions.
      const nested = await post({
        ticketId: pm.id,
        action: 'resolve',
        actor: 'bob',
        form: { amount: { kg: 2 } },
      });
      expect(nested.status).toBe(400);
      expect(nested.json.error.message).toContain('body.form.amount');
      const reasonElsewhere = await post({
        ticketId: pm.id,
        action: 'comment',
        note: 'x',
        reason: 'x',
        actor: 'bob',
      });
      expect(reasonElsewhere.status).toBe(400);
      expect(reasonElsewhere.json.error.message).toContain('body.reason: only with action hold');
      expect((await api('GET', `/api/tickets/${pm.id}`)).json.status).toBe('in_progress');

      const done = await post(
        {
          ticketId: pm.id,
          action: 'resolve',
          actor: 'bob',
          externalRef: 'PM-0042',
          form: {
            disinfectedAt: '2026-03-02T09:30:00+08:00',
            amount: 1.5,
            unit: 'kg',
            disinfectant: 'NaClO 10%',
          },
        },
        { key: 'pm-0042-resolve' },
      );
      expect(done.status, JSON.stringify(done.json)).toBe(200);
      expect(done.json.status).toBe('resolved');
      expect(done.json.maintenance.record).toEqual({
        form: 'disinfection',
        disinfectedAt: '2026-03-02T01:30:00.000Z',
        amount: 1.5,
        unit: 'kg',
        disinfectant: 'NaClO 10%',
      });
      const line = (done.json.history as Array<Record<string, any>>).at(-1)!; // eslint-disable-line @typescript-eslint/no-explicit-any -- audit line under test
      expect(line).toMatchObject({ actor: 'cmms:bob', action: 'resolve', note: '(CMMS ref PM-0042)' });
      expect(line.data.form).toMatchObject({ amount: 1.5, unit: 'kg' });
    });

    it('refuses a bad signature, a stale timestamp, bad bodies, and transitions the state machine forbids', async () => {
      const id = await createTicket('Inbound refusals');
      const bad = await post(
        { ticketId: id, action: 'acknowledge', actor: 'mallory' },
        { secret: 'not-the-secret-0123456789' },
      );
      expect(bad.status).toBe(401);
      expect(bad.json.error.code).toBe('GW_ERR_WEBHOOK_SIGNATURE');
      const stale = await post(
        { ticketId: id, action: 'acknowledge', actor: 'alice' },
        { ts: Math.floor(Date.now() / 1000) - 3600 },
      );
      expect(stale.status).toBe(401);
      expect(stale.json.error.code).toBe('GW_ERR_WEBHOOK_STALE');
      const unsigned = await fetch(`${gw.httpUrl}/api/webhooks/inbound`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'x' },
        body: '{}',
      });
      expect(unsigned.status).toBe(401);
      const noAssignee = await post({ ticketId: id, action: 'assign', actor: 'alice' });
      expect(noAssignee.status).toBe(400);
      expect(noAssignee.json.error.message).toContain('body.assignee: needed with action assign');
      const notJson = await post(null, { raw: '{"ticketId":' });
      expect(notJson.status).toBe(400);
      expect(notJson.json.error.message).toContain('body: not valid JSON');
      const transition = await post({ ticketId: id, action: 'close', actor: 'alice' });
      expect(transition.status).toBe(409);
      expect(transition.json.error.code).toBe('GW_ERR_TICKET_TRANSITION');
      const missing = await post({ ticketId: 'WO-999999', action: 'acknowledge', actor: 'alice' });
      expect(missing.status).toBe(404);
      const t = await api('GET', `/api/tickets/${id}`);
      expect(t.json.status).toBe('open');
      expect(gw.health().notifications!.inbound).toMatchObject({ badSignature: 2, stale: 1 });
    });
  });

  it('mails a safety ticket to the on-call engineer and the manager together, a routine one to the desk', async () => {
    const routine = await createTicket('Backup check');
    const safety = await createTicket('Gas smell in boiler room', 'safety');
    const mailOf = (id: string) => mails.find((m) => m.raw.includes(`${id} created`));
    const s = (await waitFor(() => mailOf(safety), 20_000, 'safety mail'))!;
    expect(s.to.sort()).toEqual(['desk@plant.example', 'manager@plant.example', 'oncall@plant.example']);
    expect(s.from).toBe('gateway@plant.example');
    expect(s.raw).toMatch(/Subject: \[critical, SAFETY\] WO-\d+ created: Gas smell in boiler room/);
    expect(s.raw).toMatch(/Message-ID: <evt_[0-9a-f-]{36}@facility-gateway>/i);
    const r = (await waitFor(() => mailOf(routine), 20_000, 'routine mail'))!;
    expect(r.to).toEqual(['desk@plant.example']);
    // Updates are not mailed (events: created only).
    await api('POST', `/api/tickets/${safety}/actions`, { action: 'acknowledge' });
    await waitFor(() => deliveredFor(safety).length === 2, 20_000, 'webhook of the update');
    expect(mails.filter((m) => m.raw.includes(safety))).toHaveLength(1);
  }, 60_000);

  it('keeps what was sent: delivered events move out of the queue into the archive, listed for an admin', async () => {
    await waitFor(() => channel().pending === 0, 20_000, 'empty queue');
    const delivered = await api(
      'GET',
      '/api/admin/notifications?state=delivered&limit=1000',
      undefined,
      ADMIN_TOKEN,
    );
    const before = delivered.json.events as Array<{ seq: number; id: string; channel: string }>;
    expect(before.length).toBeGreaterThan(5);
    // What the hourly archiving does once `retentionDays` have passed.
    expect(gw.notifications!.queue.archiveDelivered(Date.now() + 1, Date.now())).toBe(before.length);
    const after = await api(
      'GET',
      '/api/admin/notifications?state=delivered&limit=1000',
      undefined,
      ADMIN_TOKEN,
    );
    expect(after.json.events).toEqual([]);
    const archived = await api(
      'GET',
      '/api/admin/notifications?state=archived&limit=1000',
      undefined,
      ADMIN_TOKEN,
    );
    const rows = archived.json.events as Array<Record<string, unknown>>;
    expect(rows.map((r) => r.seq)).toEqual(before.map((r) => r.seq));
    expect(rows.every((r) => r.state === 'archived' && typeof r.deliveredAt === 'string')).toBe(true);
    const one = before.find((r) => r.channel === 'webhook:cmms')!;
    const ticketId = rows.find((r) => r.seq === one.seq)!.ticketId as string;
    const forTicket = await api(
      'GET',
      `/api/admin/notifications?state=archived&channel=webhook:cmms&ticketId=${ticketId}`,
      undefined,
      ADMIN_TOKEN,
    );
    expect((forTicket.json.events as Array<{ ticketId: string }>).every((r) => r.ticketId === ticketId)).toBe(
      true,
    );
    expect((forTicket.json.events as Array<{ id: string }>).map((r) => r.id)).toContain(one.id);
  });

  // Last: the tick escalates every ticket still open in this gateway.
  it('an escalation reaches the contact of its level: level 1 by mail and chat, level 2 by mail', async () => {
    const id = await createTicket('Nobody answers the pump alarm');
    const created = Date.parse((await api('GET', `/api/tickets/${id}`)).json.createdAt as string);
    const escalationMails = () => mails.filter((m) => m.raw.includes(`${id} escalated`));
    const chatFor = () =>
      chat.received.filter((r) => (JSON.parse(r.body) as { ticket: { id: string } }).ticket.id === id);

    // Medium priority: no response within 30 minutes → level 1, the on-call engineer.
    gw.workorders!.tick(created + 30 * MIN);
    const m1 = (await waitFor(() => escalationMails()[0], 20_000, 'mail to the level-1 contact'))!;
    // Only the contact: the desk's list takes created events only.
    expect(m1.to).toEqual(['oncall-contact@plant.example']);
    expect(m1.raw).toContain('Escalated to level 1: on-call engineer');
    const c1 = (await waitFor(() => chatFor()[0], 20_000, 'chat message to the level-1 contact'))!;
    expect(c1.signatureValid).toBe(true);
    const body = JSON.parse(c1.body) as {
      type: string;
      changes: { action: string; data: { level: number; kind: string; contact: { name: string } } }[];
    };
    expect(body.type).toBe('ticket.escalated');
    expect(body.changes.map((c) => [c.action, c.data.level, c.data.kind, c.data.contact.name])).toEqual([
      ['escalate', 1, 'response', 'on-call engineer'],
    ]);

    // Not resolved within 4 hours → level 2, the shift supervisor, who has mail only.
    gw.workorders!.tick(created + 4 * HOUR);
    const m2 = (await waitFor(() => escalationMails()[1], 20_000, 'mail to the level-2 contact'))!;
    expect(m2.to).toEqual(['supervisor@plant.example']);
    expect(m2.raw).toContain('Escalated to level 2: shift supervisor');
    // The chat is the level-1 contact's: the level-2 escalation was never queued for it.
    const queued = ['pending', 'delivered', 'dead'].flatMap((state) =>
      gw.notifications!.queue.list(state as 'pending', 'webhook:chat', 1000).filter((r) => r.ticketId === id),
    );
    expect(queued).toHaveLength(1);
    expect(chatFor()).toHaveLength(1);
  }, 60_000);
});
