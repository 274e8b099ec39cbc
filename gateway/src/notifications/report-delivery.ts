import type { Transporter } from 'nodemailer';
import type { ReportSender } from '../workorders/report-schedule.js';
import type { StoredReport } from '../workorders/report-store.js';
import type { EmailConfig, WebhookConfig } from './schema.js';
import { smtpPass, webhookSecret } from './schema.js';
import { sign } from './sign.js';

const label = (r: StoredReport): string => `${r.month}${r.site ? ` ${r.site}` : ' (all sites)'}`;
const fileName = (r: StoredReport, ext: string): string =>
  `service-report-${r.month}${r.site ? `-${r.site}` : ''}.${ext}`;

/**
 * Mail through the SMTP relay of `notifications.email` (its `from` and server; its ticket lists do
 * not apply), with the CSV attached and the HTML rendering as the body; webhooks of
 * `notifications.webhooks` by name, signed as ticket events are (`X-Gateway-Signature`), with the
 * event `report.monthly`.
 */
export class SmtpAndWebhookSender implements ReportSender {
  private transport?: Transporter;

  constructor(
    private readonly mail: EmailConfig,
    private readonly webhooks: readonly WebhookConfig[],
  ) {}

  private async connect(): Promise<Transporter> {
    if (this.transport) return this.transport;
    // Loaded with the first mail, as the notification channel does.
    const { default: nodemailer } = await import('nodemailer');
    const s = this.mail.smtp;
    this.transport = nodemailer.createTransport({
      host: s.host,
      port: s.port,
      secure: s.secure,
      auth: s.user !== undefined ? { user: s.user, pass: smtpPass(this.mail) ?? '' } : undefined,
      connectionTimeout: s.timeoutMs,
      greetingTimeout: s.timeoutMs,
      socketTimeout: s.timeoutMs,
      tls: { rejectUnauthorized: s.rejectUnauthorized },
    });
    return this.transport;
  }

  async email(to: string, r: StoredReport): Promise<void> {
    const t = await this.connect();
    try {
      await t.sendMail({
        from: this.mail.from,
        to,
        subject: `Monthly service report ${label(r)}`,
        text:
          `The monthly service report ${label(r)}, generated ${new Date(r.generatedAt).toISOString()}.\n` +
          `CSV attached; sha256 of the stored report ${r.sha256}.\n`,
        html: r.html,
        attachments: [
          { filename: fileName(r, 'csv'), content: r.csv, contentType: 'text/csv; charset=utf-8' },
          { filename: fileName(r, 'html'), content: r.html, contentType: 'text/html; charset=utf-8' },
        ],
        messageId: `<report-${r.month}-${r.site || 'all'}-${r.sha256.slice(0, 16)}@facility-gateway>`,
        headers: { 'X-Gateway-Event': 'report.monthly', 'X-Report-Sha256': r.sha256 },
      });
    } catch (err) {
      const e = err as Error & { code?: string };
      throw new Error(`GW_ERR_REPORT_EMAIL: ${e.code ?? ''} ${e.message}`.trim(), { cause: err });
    }
  }

  async webhook(name: string, r: StoredReport): Promise<void> {
    const w = this.webhooks.find((x) => x.name === name);
    if (!w) throw new Error(`GW_ERR_REPORT_WEBHOOK_UNKNOWN: no webhook ${name} in notifications.webhooks`);
    const body = JSON.stringify({
      event: 'report.monthly',
      month: r.month,
      site: r.site || null,
      generatedAt: new Date(r.generatedAt).toISOString(),
      sha256: r.sha256,
      report: JSON.parse(r.json) as unknown,
      csv: r.csv,
    });
    const ts = Math.floor(Date.now() / 1000);
    let res: Response;
    try {
      res = await fetch(w.url, {
        method: 'POST',
        headers: {
          ...w.headers,
          'content-type': 'application/json',
          'user-agent': 'facility-gateway',
          'idempotency-key': `report-${r.month}-${r.site || 'all'}-${r.sha256.slice(0, 16)}`,
          'x-gateway-event': 'report.monthly',
          'x-gateway-timestamp': String(ts),
          'x-gateway-signature': sign(webhookSecret(w), ts, body),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(w.timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      throw new Error(`GW_ERR_REPORT_WEBHOOK: ${e.cause?.code ?? e.message}`, { cause: err });
    }
    await res.text().catch(() => '');
    if (res.status < 200 || res.status >= 300)
      throw new Error(`GW_ERR_REPORT_WEBHOOK: receiver answered ${res.status}`);
  }

  close(): void {
    this.transport?.close();
    this.transport = undefined;
  }
}
