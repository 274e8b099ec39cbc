import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { startSmtpCapture, type CapturedMail, type SmtpCapture } from '../fixtures/smtp.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';
import { webhookSchema } from '../../gateway/src/notifications/index.js';

/**
 * "逐级向上联系": a contact who cannot be reached is skipped at once. The level-1 contact's pager (a
 * real webhook receiver) refuses every delivery; within one retry cycle the ticket is at level 2,
 * whose contact reads Chinese and gets the escalation mail in Chinese (a real SMTP server).
 */
const PAGER_SECRET = 'pager-shared-secret-0123456789';
const ENGINEER = 'engineer-token-unreach-0123';
const MIN = 60_000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the test reads loose JSON
type Json = Record<string, any>;

/** Subject and text of a raw mail, with MIME encoded-words and transfer encodings undone. */
function decodeMail(raw: string): { subject: string; text: string } {
  const [head = '', ...rest] = raw.split(/\r?\n\r?\n/);
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const words = (s: string) =>
    s.replace(/=\?utf-8\?([bq])\?([^?]*)\?=\s*/gi, (_m, enc: string, data: string) =>
      enc.toLowerCase() === 'b'
        ? Buffer.from(data, 'base64').toString('utf8')
        : Buffer.from(
            data
              .replace(/_/g, ' ')
              .replace(/=([0-9a-f]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
            'latin1',
          ).toString('utf8'),
    );
  const subject = words(/^subject: (.*)$/im.exec(unfolded)?.[1] ?? '');
  const body = rest.join('\n\n');
  const cte = /^content-transfer-encoding: (\S+)/im.exec(unfolded)?.[1]?.toLowerCase();
  const text =
    cte === 'base64'
      ? Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')
      : cte === 'quoted-printable'
        ? Buffer.from(
            body
              .replace(/=\r?\n/g, '')
              .replace(/=([0-9A-F]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
            'latin1',
          ).toString('utf8')
        : body;
  return { subject, text };
}

describe('escalation past an unreachable contact', () => {
  let gw: Awaited<ReturnType<typeof startGateway>>;
  let pager: WebhookReceiver;
  let smtp: SmtpCapture;
  let mails: CapturedMail[] = [];

  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${gw.httpUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ENGINEER}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, json: (await r.json()) as Json };
  };

  beforeAll(async () => {
    pager = new WebhookReceiver(PAGER_SECRET, await freePort());
    pager.defaultStatus = 503;
    await pager.start();
    smtp = await startSmtpCapture();
    mails = smtp.mails;
    const smtpPort = smtp.port;
    gw = await startGateway(
      testConfig({
        influx: { enabled: false },
        http: { tokens: [{ name: 'eve', role: 'engineer', token: ENGINEER }] },
        workorders: {
          maintenance: { enabled: false },
          contacts: [
            { name: 'on-call engineer', webhook: 'pager' },
            { name: '值班主管', email: 'supervisor@plant.example', language: 'zh' },
            { name: 'facility manager', email: 'manager@plant.example' },
          ],
          // Only a dead notification counts here: the pager gives up after 2 attempts.
          escalation: { afterFailures: 0 },
        },
        notifications: {
          pollMs: 100,
          webhooks: [
            webhookSchema.parse({
              name: 'pager',
              url: pager.url,
              secret: PAGER_SECRET,
              contactsOnly: true,
              maxAttempts: 2,
              retry: { minMs: 100, maxMs: 200 },
            }),
          ],
          email: {
            enabled: true,
            smtp: { host: '127.0.0.1', port: smtpPort, secure: false },
            events: ['ticket.escalated'],
            retry: { minMs: 100, maxMs: 200 },
          },
        },
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await gw?.cleanup();
    await pager?.stop();
    await smtp?.close();
  });

  it('a pager that cannot be reached moves the ticket to level 2 within one retry cycle, mailed in Chinese', async () => {
    const created = await api('POST', '/api/tickets', { title: 'Dosing pump silent', site: 'plant-u' });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    // Medium priority, not acknowledged in 30 minutes: level 1, the on-call engineer's pager.
    gw.workorders!.tick(Date.parse(created.json.createdAt as string) + 30 * MIN);
    await waitFor(() => pager.received.length >= 2 || undefined, 10_000, 'two attempts at the pager');
    const t = await waitFor(
      async () => {
        const r = (await api('GET', `/api/tickets/${id}`)).json;
        return r.escalationLevel === 2 ? r : undefined;
      },
      10_000,
      'level 2',
    );
    // The audit trail says why: the contact was not reached, through which channel.
    const esc = (t!.history as Json[]).filter((h) => h.action === 'escalate');
    expect(esc.map((h) => [h.data.level, h.data.kind])).toEqual([
      [1, 'response'],
      [2, 'unreachable'],
    ]);
    expect(esc[1]!.data.channel).toBe('webhook:pager');
    expect(esc[1]!.note).toMatch(/on-call engineer not reached \(webhook:pager gave up after 2 attempts/);
    expect(esc[1]!.note).toContain('escalated to level 2 (值班主管)');
    // Not at the hour mark: the next regular check is still an interval away.
    expect(Date.parse(t!.nextResponseCheckAt as string)).toBeGreaterThan(Date.now() + 60 * MIN);

    // The level-2 contact reads Chinese: the mail is in Chinese.
    const mail = await waitFor(
      () => mails.find((m) => m.to.includes('supervisor@plant.example')),
      10_000,
      'mail to the level-2 contact',
    );
    const m = decodeMail(mail!.raw);
    expect(m.subject).toContain(`${id} 已升级`);
    expect(m.text).toContain('已升级到第 2 级: 值班主管');
    expect(m.text).toContain('优先级 中');
    // The pager was not tried again for level 2: it is the level-1 contact's.
    expect(pager.received).toHaveLength(2);
  }, 60_000);
});
