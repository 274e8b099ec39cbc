import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookSchema } from '../../gateway/src/notifications/index.js';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';

/**
 * The on-call rota from the API against a running gateway: the contact on call this week is
 * changed, and the next escalation reaches the new contact (its own pager webhook, a real HTTP
 * receiver) without a restart; the history says who changed it and from whom to whom.
 */
const MIN = 60_000;
const ENGINEER = 'engineer-token-0123';
const SECRET = 'pager-secret-0123456789abcdef';
let gw: Awaited<ReturnType<typeof startGateway>>;
let liPager: WebhookReceiver;
let zhangPager: WebhookReceiver;

async function call(method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(`${gw.httpUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

type Ticket = {
  id: string;
  createdAt: string;
  history: { action: string; data?: { contact?: { name: string } } }[];
};

/** A ticket nobody acknowledges for 30 minutes: escalated to level 1 by the escalation tick. */
async function escalatedTicket(title: string): Promise<string> {
  const created = await call('POST', '/api/tickets', ENGINEER, { title, site: 'plant' });
  expect(created.status).toBe(201);
  gw.workorders!.tick(Date.parse(created.json.createdAt as string) + 30 * MIN);
  const t = (await call('GET', `/api/tickets/${created.json.id as string}`, ENGINEER))
    .json as unknown as Ticket;
  const esc = t.history.filter((h) => h.action === 'escalate');
  expect(esc).toHaveLength(1);
  return esc[0]!.data!.contact!.name;
}

const pagedFor = (r: WebhookReceiver, title: string) => r.received.some((x) => x.body.includes(title));

beforeAll(async () => {
  liPager = new WebhookReceiver(SECRET, await freePort());
  zhangPager = new WebhookReceiver(SECRET, await freePort());
  await liPager.start();
  await zhangPager.start();
  const hook = (name: string, r: WebhookReceiver) =>
    webhookSchema.parse({
      name,
      url: r.url,
      secret: SECRET,
      contactsOnly: true,
      retry: { minMs: 100, maxMs: 200 },
    });
  gw = await startGateway(
    testConfig({
      influx: { enabled: false },
      http: { tokens: [{ name: 'erin', role: 'engineer', token: ENGINEER }] },
      notifications: { webhooks: [hook('pager-li', liPager), hook('pager-zhang', zhangPager)] },
    }),
  );
}, 60_000);
afterAll(async () => {
  await gw?.cleanup();
  await liPager?.stop();
  await zhangPager?.stop();
});

describe('on-call rota at runtime', () => {
  it('the next escalation reaches the new on-call contact without a restart; the audit says who changed it', async () => {
    // Only the admin changes contacts.
    const li = { name: 'Li Wei', contact: '+86 138 0000 0001', webhook: 'pager-li' };
    expect((await call('PUT', '/api/fleet/on-call', ENGINEER, { contact: li })).status).toBe(403);
    expect((await call('PUT', '/api/fleet/on-call', ADMIN_TOKEN, { contact: li })).status).toBe(200);
    expect(await escalatedTicket('Dosing pump silent')).toBe('Li Wei');
    await waitFor(() => pagedFor(liPager, 'Dosing pump silent'), 10_000, "Li Wei's pager");

    const zhang = { name: 'Zhang San', webhook: 'pager-zhang' };
    const put = await call('PUT', '/api/fleet/on-call', ADMIN_TOKEN, {
      contact: zhang,
      note: 'swap with Li',
    });
    expect(put.status).toBe(200);
    const contacts = (await call('GET', '/api/fleet/contacts', ENGINEER)).json;
    expect(contacts.onCall).toEqual(zhang);
    expect((contacts.chain as { name: string }[])[0]).toEqual(zhang);

    expect(await escalatedTicket('Chlorine analyser offline')).toBe('Zhang San');
    await waitFor(() => pagedFor(zhangPager, 'Chlorine analyser offline'), 10_000, "Zhang San's pager");
    expect(pagedFor(liPager, 'Chlorine analyser offline')).toBe(false);

    const h = await call('GET', '/api/fleet/history?entity=on-call', ENGINEER);
    const changes = h.json.changes as {
      actor: string;
      before: unknown;
      after: unknown;
      note: string | null;
    }[];
    expect(
      changes.map((c) => [
        c.actor,
        (c.before as { name: string } | null)?.name ?? null,
        (c.after as { name: string }).name,
      ]),
    ).toEqual([
      ['admin', 'Li Wei', 'Zhang San'],
      ['admin', null, 'Li Wei'],
    ]);
    expect(changes[0]!.note).toBe('swap with Li');
  });

  it('refuses a contact whose webhook does not exist, naming it', async () => {
    const r = await call('PUT', '/api/fleet/contacts', ADMIN_TOKEN, {
      contacts: [{ name: 'night desk', webhook: 'no-such-hook' }],
    });
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.json)).toContain('no webhook named no-such-hook');
    const ok = await call('PUT', '/api/fleet/contacts', ADMIN_TOKEN, {
      contacts: [{ name: 'night desk' }, { name: 'shift supervisor' }, { name: 'facility manager' }],
    });
    expect(ok.status).toBe(200);
    // This week's on-call contact stays at level 1 over the new chain.
    const chain = (await call('GET', '/api/fleet/contacts', ENGINEER)).json.chain as { name: string }[];
    expect(chain.map((c) => c.name)).toEqual(['Zhang San', 'shift supervisor', 'facility manager']);
  });
});
