import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { startSmtpCapture, type CapturedMail, type SmtpCapture } from '../fixtures/smtp.js';
import { freePort } from '../fixtures/ports.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';
import { webhookSchema } from '../../gateway/src/notifications/index.js';

/**
 * Must-show 5 (issue 20): a month closed by a controllable clock (the scheduler's tick takes the
 * time) is generated, mailed with its CSV attached (smtp-server as the relay) and posted (a signed
 * webhook) before the 10th; a receiver that keeps failing leads to one ticket after the due time.
 */
const SECRET = 'report-webhook-secret-0123456789';
const DAY = 86_400_000;

type Gw = Awaited<ReturnType<typeof startGateway>>;

describe('the monthly report generated and delivered', () => {
  let gw: Gw;
  let receiver: WebhookReceiver;
  let smtp: SmtpCapture;
  let mails: CapturedMail[] = [];

  const api = async (path: string) => {
    const r = await fetch(`${gw.httpUrl}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    return { status: r.status, headers: r.headers, text: await r.text() };
  };
  const json = async <T>(path: string): Promise<T> => JSON.parse((await api(path)).text) as T;
  const reportPosts = (month: string) =>
    receiver.received.filter(
      (r) => r.headers['x-gateway-event'] === 'report.monthly' && r.body.includes(`"month":"${month}"`),
    );
  const mailsOf = (month: string) => mails.filter((m) => m.raw.includes(`Monthly service report ${month}`));

  beforeAll(async () => {
    receiver = new WebhookReceiver(SECRET, await freePort());
    await receiver.start();
    smtp = await startSmtpCapture();
    mails = smtp.mails;
    const smtpPort = smtp.port;
    gw = await startGateway(
      testConfig({
        influx: { enabled: false },
        notifications: {
          email: { smtp: { host: '127.0.0.1', port: smtpPort }, from: 'gateway@plant.example' },
          webhooks: [
            webhookSchema.parse({ name: 'cmms', url: receiver.url, secret: SECRET, contactsOnly: true }),
          ],
        },
        workorders: {
          report: {
            recipients: [
              { name: 'manager', email: 'manager@plant.example' },
              { name: 'cmms', webhook: 'cmms' },
              { name: 'site-a lead', email: 'lead-a@plant.example', site: 'site-a' },
            ],
            retryMs: 60_000,
            // Ticked by the test only.
            checkMs: 3_600_000,
          },
        },
      }),
    );
    // The check the scheduler makes at start (the month before the real one) is let finish first.
    await gw.reports!.tick();
  });
  afterAll(async () => {
    await gw?.cleanup();
    await receiver?.stop();
    await smtp.close();
  });

  it('closes a month: generated overall and per site, mailed with the CSV and posted, before the 10th', async () => {
    // A ticket of this month at site-a, so that the report has something in it.
    const r = await fetch(`${gw.httpUrl}/api/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Tank hatch seal worn', site: 'site-a', class: 'routine' }),
    });
    expect(r.status).toBe(201);
    const now = new Date();
    const month = `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);

    // Two hours into the next month: the month is closed.
    await gw.reports!.tick(next + 2 * 3_600_000);

    const status = await json<{
      month: string;
      dueAt: string;
      reports: Array<{ site: string | null; sha256: string }>;
      deliveries: Array<{ recipient: string; status: string; deliveredAt: string | null }>;
      overdueTicket: string | null;
    }>(`/api/reports/monthly/status?month=${month}`);
    expect(status.dueAt).toBe(new Date(next + 9 * DAY).toISOString());
    expect(status.reports.map((x) => x.site)).toEqual([null, 'site-a']);
    expect(status.deliveries.map((d) => [d.recipient, d.status])).toEqual([
      ['cmms', 'delivered'],
      ['manager', 'delivered'],
      ['site-a lead', 'delivered'],
    ]);
    for (const d of status.deliveries)
      expect(Date.parse(d.deliveredAt!)).toBeLessThan(Date.parse(status.dueAt));
    expect(status.overdueTicket).toBeNull();

    // The stored report, as generated: its CSV is the one attached, its digest the one announced.
    const stored = await api(`/api/reports/monthly/stored?month=${month}&format=csv`);
    expect(stored.status).toBe(200);
    const overall = status.reports.find((x) => x.site === null)!;
    expect(stored.headers.get('x-report-sha256')).toBe(overall.sha256);
    expect(stored.text).toContain('section,tickets');

    const mail = mailsOf(month).find((m) => m.to.includes('manager@plant.example'))!;
    expect(mail).toBeDefined();
    expect(mail.raw).toContain(`filename=service-report-${month}.csv`);
    expect(mail.raw).toMatch(/Content-Type: text\/html/);
    const attached = /filename=service-report-[\d-]+\.csv\r?\n\r?\n([\s\S]*?)\r?\n--/.exec(mail.raw);
    expect(attached).not.toBeNull();
    expect(Buffer.from(attached![1]!.replace(/\s/g, ''), 'base64').toString('utf8')).toBe(stored.text);
    const siteMail = mailsOf(month).find((m) => m.to.includes('lead-a@plant.example'))!;
    expect(siteMail.raw).toContain(`filename=service-report-${month}-site-a.csv`);

    const posts = reportPosts(month);
    expect(posts).toHaveLength(1);
    expect(posts[0]!.signatureValid).toBe(true);
    const body = JSON.parse(posts[0]!.body) as { sha256: string; csv: string; report: { tickets: unknown } };
    expect(body.sha256).toBe(overall.sha256);
    expect(body.csv).toBe(stored.text);
    expect(createHash('sha256').update(body.csv).digest('hex')).toBe(
      createHash('sha256').update(stored.text).digest('hex'),
    );

    // Later checks change nothing: the report stays as it was, nothing is sent twice.
    const before = mails.length;
    await gw.reports!.tick(next + 3 * DAY);
    expect(mails.length).toBe(before);
    expect(reportPosts(month)).toHaveLength(1);
    const again = await json<{ reports: Array<{ sha256: string }> }>(
      `/api/reports/monthly/status?month=${month}`,
    );
    expect(again.reports.map((x) => x.sha256)).toEqual(status.reports.map((x) => x.sha256));
  });

  it('retries a failing receiver until the due day, then marks it failed and raises one ticket', async () => {
    const now = new Date();
    const start = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
    const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 2, 1);
    const month = new Date(start).toISOString().slice(0, 7);
    receiver.defaultStatus = 503;

    await gw.reports!.tick(next + 3_600_000);
    await gw.reports!.tick(next + 3_600_000 + 61_000);
    await gw.reports!.tick(next + 5 * DAY);
    const mid = await json<{ deliveries: Array<{ recipient: string; status: string; attempts: number }> }>(
      `/api/reports/monthly/status?month=${month}`,
    );
    const hook = mid.deliveries.find((d) => d.recipient === 'cmms')!;
    expect(hook.status).toBe('pending');
    expect(hook.attempts).toBe(3);
    expect(mid.deliveries.find((d) => d.recipient === 'manager')!.status).toBe('delivered');
    expect(reportPosts(month).length).toBe(3);

    // 00:00 on the 10th passes with the receiver still failing.
    await gw.reports!.tick(next + 9 * DAY + 60_000);
    const late = await json<{
      deliveries: Array<{ recipient: string; status: string; lastError: string | null }>;
      overdueTicket: string | null;
    }>(`/api/reports/monthly/status?month=${month}`);
    const failed = late.deliveries.find((d) => d.recipient === 'cmms')!;
    expect(failed.status).toBe('failed');
    expect(failed.lastError).toContain('503');
    expect(late.overdueTicket).not.toBeNull();
    const ticket = await json<{ title: string; site: string; status: string }>(
      `/api/tickets/${late.overdueTicket!}`,
    );
    expect(ticket.title).toBe(`Monthly service report ${month} not delivered by the due day`);
    expect(ticket.status).toBe('open');

    // One ticket, however often the scheduler looks again; no more attempts after the due time.
    await gw.reports!.tick(next + 11 * DAY);
    const tickets = await json<{ tickets: Array<{ title: string }> } | Array<{ title: string }>>(
      '/api/tickets?status=open',
    );
    const list = Array.isArray(tickets) ? tickets : tickets.tickets;
    expect(list.filter((t) => t.title.includes(`report ${month}`))).toHaveLength(1);
    expect(reportPosts(month).length).toBe(3);
    const health = await json<{ components: { reports: { state: string; failed: number } } }>('/api/health');
    expect(health.components.reports.state).toBe('degraded');
  });
});
