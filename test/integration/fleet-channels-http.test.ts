import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { SMTPServer } from 'smtp-server';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';

/**
 * Notification channels from the API against a running gateway, a real HTTP receiver and a real
 * SMTP server: a webhook created over the API gets the next ticket event without a restart, signed
 * with its secret; the secret never comes back (list, history, export, the store's file); an edit
 * without the secret keeps it; a channel a contact names cannot be removed; roles and bad input.
 */
const ENGINEER = 'engineer-token-0123';
const VIEWER = 'viewer-token-0123';
const SECRET = 'ops-signing-secret-0123456789';
const API_KEY = 'receiver-api-key-9876543210';
const SMTP_PASS = 'smtp-password-5555';
let gw: Awaited<ReturnType<typeof startGateway>>;
let first: WebhookReceiver;
let second: WebhookReceiver;
let dataDir: string;
let cfg: ReturnType<typeof testConfig>;
/** A real SMTP server that signs in only the gateway's user with the password set over the API. */
const smtp = {
  port: 0,
  mails: [] as { to: string[]; raw: string }[],
  logins: [] as string[],
  server: undefined as SMTPServer | undefined,
};

async function startSmtp(): Promise<void> {
  smtp.server = new SMTPServer({
    authOptional: false,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, cb) {
      smtp.logins.push(auth.username ?? '');
      if (auth.username === 'gateway' && auth.password === SMTP_PASS) cb(null, { user: 'gateway' });
      else cb(new Error('bad user or password'));
    },
    onData(stream, session, cb) {
      let raw = '';
      stream.on('data', (c: Buffer) => (raw += c.toString()));
      stream.on('end', () => {
        smtp.mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw });
        cb();
      });
    },
  });
  smtp.port = await freePort();
  await new Promise<void>((resolve) => smtp.server!.listen(smtp.port, '127.0.0.1', resolve));
}

async function call(method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(`${gw.httpUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = res.headers.get('content-type')?.includes('json')
    ? (JSON.parse(text) as Record<string, unknown>)
    : {};
  return { status: res.status, text, json };
}

const hook = (url: string, extra: Record<string, unknown> = {}) => ({
  name: 'ops-room',
  url,
  events: ['ticket.created'],
  retry: { minMs: 100, maxMs: 200 },
  ...extra,
});

async function ticket(title: string): Promise<void> {
  const r = await call('POST', '/api/tickets', ENGINEER, { title, site: 'plant' });
  expect(r.status).toBe(201);
}

const got = (r: WebhookReceiver, title: string) => r.received.find((x) => x.body.includes(title));

/** Every byte the shared store holds on disk (the database and its write-ahead log). */
function storeBytes(): string {
  const dir = dataDir;
  return readdirSync(dir)
    .filter((f) => f.startsWith('shared.db'))
    .map((f) => readFileSync(join(dir, f)).toString('latin1'))
    .join('');
}

beforeAll(async () => {
  process.env.GATEWAY_SECRETS_KEY = 'test-secrets-key-0123456789abcdef0123';
  first = new WebhookReceiver(SECRET, await freePort());
  second = new WebhookReceiver(SECRET, await freePort());
  await first.start();
  await second.start();
  await startSmtp();
  cfg = testConfig({
    influx: { enabled: false },
    http: {
      tokens: [
        { name: 'erin', role: 'engineer', token: ENGINEER },
        { name: 'val', role: 'viewer', token: VIEWER },
      ],
    },
  });
  dataDir = cfg.dataDir;
  gw = await startGateway(cfg);
}, 60_000);
afterAll(async () => {
  await gw?.cleanup();
  await first?.stop();
  await second?.stop();
  await new Promise<void>((resolve) => (smtp.server ? smtp.server.close(() => resolve()) : resolve()));
  delete process.env.GATEWAY_SECRETS_KEY;
});

describe('notification channels at runtime', () => {
  it('a webhook created over the API gets the next ticket event, signed, without a restart', async () => {
    const put = await call(
      'PUT',
      '/api/fleet/channels/webhooks',
      ADMIN_TOKEN,
      hook(first.url, { secret: SECRET, headers: { 'X-Api-Key': API_KEY }, note: 'ops room chat' }),
    );
    expect(put.status, put.text).toBe(200);
    await ticket('Pump seal leaking in plant room');
    await waitFor(() => got(first, 'Pump seal leaking') !== undefined, 10_000);
    const r = got(first, 'Pump seal leaking')!;
    expect(r.signatureValid).toBe(true);
    expect(r.headers['x-api-key']).toBe(API_KEY);
    expect(r.headers['x-gateway-event']).toBe('ticket.created');
  });

  it('never gives the secrets back: list, history, export and the store on disk', async () => {
    const list = await call('GET', '/api/fleet/channels', VIEWER);
    expect(list.status).toBe(200);
    const hooks = list.json.webhooks as Array<Record<string, unknown>>;
    const ops = hooks.find((w) => w.name === 'ops-room')!;
    expect(ops).toMatchObject({
      origin: 'database',
      disabled: false,
      secretSet: true,
      headers: { 'X-Api-Key': '(secret)' },
      url: first.url,
    });
    const history = await call('GET', '/api/fleet/history?entity=channel', VIEWER);
    expect(history.status).toBe(200);
    expect((history.json.changes as unknown[]).length).toBeGreaterThan(0);
    const exported = await call('GET', '/api/config/export', ADMIN_TOKEN);
    expect(exported.status).toBe(200);
    expect(exported.text).toContain('ops-room');
    expect(exported.text).toContain('(secret)');
    const where = { list: list.text, history: history.text, export: exported.text, store: storeBytes() };
    for (const [name, text] of Object.entries(where)) {
      expect(text.includes(SECRET), `secret in ${name}`).toBe(false);
      expect(text.includes(API_KEY), `header value in ${name}`).toBe(false);
    }
  });

  it('an edit without the secret keeps it: the next event goes to the new URL, still signed', async () => {
    const put = await call('PUT', '/api/fleet/channels/webhooks', ADMIN_TOKEN, {
      ...hook(second.url),
      headers: { 'X-Api-Key': null },
    });
    expect(put.status, put.text).toBe(200);
    const after = JSON.stringify((put.json.change as { after: unknown }).after);
    expect(after).not.toContain(SECRET);
    await ticket('Chlorine dosing pump tripped');
    await waitFor(() => got(second, 'Chlorine dosing pump') !== undefined, 10_000);
    const r = got(second, 'Chlorine dosing pump')!;
    expect(r.signatureValid).toBe(true);
    expect(r.headers['x-api-key']).toBe(API_KEY);
    expect(got(first, 'Chlorine dosing pump')).toBeUndefined();
  });

  it('sends a test notification and answers the verdict', async () => {
    const ok = await call('POST', '/api/fleet/channels/test', ADMIN_TOKEN, { channel: 'webhook:ops-room' });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json).toMatchObject({ verdict: 'delivered', status: 200, error: null });
    expect(second.received.at(-1)!.headers['x-gateway-event']).toBe('ticket.test');
    expect(second.received.at(-1)!.signatureValid).toBe(true);
    second.script.push({ status: 410 });
    const gone = await call('POST', '/api/fleet/channels/test', ADMIN_TOKEN, { channel: 'webhook:ops-room' });
    expect(gone.json).toMatchObject({ verdict: 'retry', status: 410 });
    const none = await call('POST', '/api/fleet/channels/test', ADMIN_TOKEN, { channel: 'webhook:nosuch' });
    expect(none.status).toBe(404);
  });

  it('sets the email channel; the password is write-only and a test mail reaches the SMTP server', async () => {
    const put = await call('PUT', '/api/fleet/channels/email', ADMIN_TOKEN, {
      enabled: true,
      smtp: { host: '127.0.0.1', port: smtp.port, user: 'gateway', pass: SMTP_PASS },
      from: 'gateway@example.org',
      to: ['desk@example.org'],
    });
    expect(put.status, put.text).toBe(200);
    const test = await call('POST', '/api/fleet/channels/test', ADMIN_TOKEN, { channel: 'email' });
    expect(test.json, test.text).toMatchObject({ verdict: 'delivered' });
    await waitFor(() => smtp.mails.some((m) => m.to.includes('desk@example.org')), 10_000);
    // Ticket mail too, through the channel set a moment ago.
    await ticket('Gas meter cabinet door forced');
    await waitFor(() => smtp.mails.some((m) => m.raw.includes('Gas meter cabinet door forced')), 10_000);
    // An edit without the password keeps it: the server still signs the gateway in.
    const edit = await call('PUT', '/api/fleet/channels/email', ADMIN_TOKEN, {
      enabled: true,
      smtp: { host: '127.0.0.1', port: smtp.port, user: 'gateway' },
      from: 'gateway@example.org',
      to: ['desk@example.org', 'manager@example.org'],
    });
    expect(edit.status, edit.text).toBe(200);
    const again = await call('POST', '/api/fleet/channels/test', ADMIN_TOKEN, { channel: 'email' });
    expect(again.json, again.text).toMatchObject({ verdict: 'delivered' });
    expect(smtp.logins.every((u) => u === 'gateway')).toBe(true);
    const list = await call('GET', '/api/fleet/channels', VIEWER);
    expect(list.json.email).toMatchObject({ origin: 'database', enabled: true, smtp: { passSet: true } });
    const history = await call('GET', '/api/fleet/history?entity=channel', VIEWER);
    const exported = await call('GET', '/api/config/export', ADMIN_TOKEN);
    const where = { list: list.text, history: history.text, export: exported.text, store: storeBytes() };
    for (const [name, text] of Object.entries(where))
      expect(text.includes(SMTP_PASS), `password in ${name}`).toBe(false);
  });

  it('a webhook a contact names is neither removed nor disabled (409 with the contacts)', async () => {
    const chain = await call('PUT', '/api/fleet/contacts', ADMIN_TOKEN, {
      contacts: [{ name: 'Li Wei', webhook: 'ops-room' }, { name: 'shift supervisor' }],
    });
    expect(chain.status, chain.text).toBe(200);
    const del = await call('DELETE', '/api/fleet/channels/webhooks/ops-room', ADMIN_TOKEN);
    expect(del.status).toBe(409);
    expect(del.json.error).toMatchObject({ code: 'GW_ERR_CHANNEL_IN_USE', contacts: ['Li Wei'] });
    const off = await call('PUT', '/api/fleet/channels/webhooks', ADMIN_TOKEN, {
      ...hook(second.url),
      disabled: true,
    });
    expect(off.status).toBe(409);
    const list = await call('GET', '/api/fleet/channels', VIEWER);
    const ops = (list.json.webhooks as Array<Record<string, unknown>>).find((w) => w.name === 'ops-room');
    expect(ops?.usedBy).toEqual(['Li Wei']);
    // Once the chain no longer names it, it can go.
    await call('PUT', '/api/fleet/contacts', ADMIN_TOKEN, {
      contacts: [{ name: 'on-call engineer' }, { name: 'shift supervisor' }],
    });
    const del2 = await call('DELETE', '/api/fleet/channels/webhooks/ops-room', ADMIN_TOKEN);
    expect(del2.status, del2.text).toBe(200);
    expect((await call('GET', '/api/fleet/channels', VIEWER)).text).not.toContain('ops-room');
  });

  it('refuses viewer and engineer changes, and bad input with the key path', async () => {
    for (const token of [VIEWER, ENGINEER]) {
      const r = await call('PUT', '/api/fleet/channels/webhooks', token, hook(first.url, { secret: SECRET }));
      expect(r.status).toBe(403);
      const t = await call('POST', '/api/fleet/channels/test', token, { channel: 'email' });
      expect(t.status).toBe(403);
    }
    const ftp = await call('PUT', '/api/fleet/channels/webhooks', ADMIN_TOKEN, {
      ...hook('ftp://127.0.0.1/x'),
      name: 'bad-one',
      secret: SECRET,
    });
    expect(ftp.status).toBe(400);
    expect((ftp.json.error as { message: string }).message).toMatch(/^url: /);
    const short = await call('PUT', '/api/fleet/channels/webhooks', ADMIN_TOKEN, {
      ...hook(first.url),
      name: 'bad-two',
      secret: 'short',
    });
    expect(short.status).toBe(400);
    expect((short.json.error as { message: string }).message).toMatch(/^secret: /);
    const noSecret = await call('PUT', '/api/fleet/channels/webhooks', ADMIN_TOKEN, {
      ...hook(first.url),
      name: 'bad-three',
    });
    expect(noSecret.status).toBe(400);
    expect((noSecret.json.error as { message: string }).message).toContain('secret: needs exactly one');
    const mail = await call('PUT', '/api/fleet/channels/email', ADMIN_TOKEN, {
      enabled: true,
      to: ['not an address'],
    });
    expect(mail.status).toBe(400);
    expect((mail.json.error as { message: string }).message).toMatch(/^to\.0: /);
    const nobody = await call('PUT', '/api/fleet/channels/email', ADMIN_TOKEN, { enabled: true });
    expect(nobody.status).toBe(400);
    expect((nobody.json.error as { message: string }).message).toMatch(/^to: email is enabled but has no/);
  });

  it('restores a change from the history, the secret kept', async () => {
    const put = await call(
      'PUT',
      '/api/fleet/channels/webhooks',
      ADMIN_TOKEN,
      hook(first.url, { secret: SECRET, headers: { 'X-Api-Key': API_KEY } }),
    );
    expect(put.status).toBe(200);
    const moved = await call('PUT', '/api/fleet/channels/webhooks', ADMIN_TOKEN, hook(second.url));
    expect(moved.status).toBe(200);
    // Restore writes the change's "before" back: the first receiver again, with the secret in force.
    const id = (moved.json.change as { id: number }).id;
    const r = await call('POST', `/api/fleet/history/${id}/restore`, ADMIN_TOKEN);
    expect(r.status, r.text).toBe(200);
    expect(r.text).not.toContain(SECRET);
    await ticket('Water in the server room');
    await waitFor(() => got(first, 'Water in the server room') !== undefined, 10_000);
    expect(got(first, 'Water in the server room')!.signatureValid).toBe(true);
    expect(got(second, 'Water in the server room')).toBeUndefined();
  });

  it('survives a restart: the stored channel and its sealed secret are read back', async () => {
    await gw.stop();
    gw = await startGateway(cfg);
    await ticket('Meter cupboard flooded');
    await waitFor(() => got(first, 'Meter cupboard flooded') !== undefined, 10_000);
    expect(got(first, 'Meter cupboard flooded')!.signatureValid).toBe(true);
    expect(got(first, 'Meter cupboard flooded')!.headers['x-api-key']).toBe(API_KEY);
  });
});
