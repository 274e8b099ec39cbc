import type { Transporter } from 'nodemailer';
import type { TicketEvent } from '../workorders/types.js';
import type { Contact } from '../workorders/escalation.js';
import type { HistoryEntry, Language, Priority } from '../workorders/types.js';
import { parseRetryAfter } from '../core/backoff.js';
import { verdictOf } from './verdict.js';
import type { ChannelRoute, NotifyPayload, QueueRow } from './queue.js';
import { smtpPass, webhookSecret, type EmailConfig, type RetryConfig, type WebhookConfig } from './schema.js';
import { sign } from './sign.js';
import { eventText } from './text.js';

/** Recipients of one mail: those who read the same language get one message together. */
export interface MailTarget {
  to: string[];
  /** Absent on rows queued before languages existed: one English mail to `to`. */
  groups?: { language: Language; to: string[] }[];
}

/** What one delivery attempt came to. */
export type Outcome =
  | { kind: 'delivered'; status: number | null }
  | { kind: 'retry'; status: number | null; error: string; afterMs?: number }
  | { kind: 'dead'; status: number | null; error: string };

/** A destination of ticket events: which events it takes, and how one is delivered. */
export interface Channel extends ChannelRoute {
  retry: RetryConfig;
  maxAttempts: number | undefined;
  maxAgeHours: number;
  /** The longest one attempt takes (a claim in the cluster's shared copy outlasts it, ADR 0179). */
  readonly timeoutMs?: number;
  start(): void;
  stop(): void;
  deliver(row: QueueRow, now: number, signal: AbortSignal): Promise<Outcome>;
}

/** SMTP replies to a sign-in that failed (RFC 4954): the account, not the message. */
const SMTP_AUTH_FAILED = new Set([530, 534, 535, 538]);

/** An HTTP(S) receiver, signed with its shared secret (docs/workorders.md, "Webhooks and email"). */
export class WebhookChannel implements Channel {
  readonly channel: string;
  readonly retry: RetryConfig;
  readonly maxAttempts: number | undefined;
  readonly maxAgeHours: number;
  readonly timeoutMs: number;
  private secret = '';

  constructor(private readonly cfg: WebhookConfig) {
    this.channel = `webhook:${cfg.name}`;
    this.retry = cfg.retry;
    this.maxAttempts = cfg.maxAttempts;
    this.maxAgeHours = cfg.maxAgeHours;
    this.timeoutMs = cfg.timeoutMs;
  }

  start(): void {
    this.secret = webhookSecret(this.cfg);
  }

  stop(): void {}

  wants(e: TicketEvent): { target?: unknown; language?: Language } | false {
    // An escalation to a contact who is reached through this webhook goes out whatever the filters say,
    // in the contact's language.
    const contact = escalatedContacts(e)
      .reverse()
      .find((c) => c.webhook === this.cfg.name);
    if (contact) return languageOf(contact.language ?? this.cfg.language);
    if (this.cfg.contactsOnly) return false;
    if (this.cfg.events && !this.cfg.events.includes(`ticket.${e.type}`)) return false;
    if (this.cfg.priorities && !this.cfg.priorities.includes(e.ticket.priority)) return false;
    if (this.cfg.classes && !this.cfg.classes.includes(e.ticket.class)) return false;
    return languageOf(this.cfg.language);
  }

  async deliver(row: QueueRow, now: number, signal: AbortSignal): Promise<Outcome> {
    const ts = Math.floor(now / 1000);
    const headers: Record<string, string> = {
      ...this.cfg.headers,
      'content-type': 'application/json',
      'user-agent': 'facility-gateway',
      'idempotency-key': row.eventId,
      'x-gateway-event': row.event,
      'x-gateway-timestamp': String(ts),
      'x-gateway-signature': sign(this.secret, ts, row.body),
      'x-gateway-delivery-attempt': String(row.attempts + 1),
    };
    let res: Response;
    try {
      res = await fetch(this.cfg.url, {
        method: 'POST',
        headers,
        body: row.body,
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.cfg.timeoutMs)]),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why =
        e.name === 'TimeoutError'
          ? `no answer within ${this.cfg.timeoutMs} ms`
          : (e.cause?.code ?? e.cause?.message ?? e.message);
      return { kind: 'retry', status: null, error: `GW_ERR_WEBHOOK_UNREACHABLE: ${why}` };
    }
    const text = await res.text().catch(() => '');
    const v = verdictOf(res.status);
    if (v === 'delivered') return { kind: 'delivered', status: res.status };
    const error = `GW_ERR_WEBHOOK_HTTP: receiver answered ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
    if (v === 'dead') return { kind: 'dead', status: res.status, error };
    return {
      kind: 'retry',
      status: res.status,
      error,
      afterMs: parseRetryAfter(res.headers.get('retry-after'), now),
    };
  }
}

/** Mail over SMTP (nodemailer): one message per event to every recipient it concerns, together. */
export class EmailChannel implements Channel {
  readonly channel = 'email';
  readonly retry: RetryConfig;
  readonly maxAttempts: number | undefined;
  readonly maxAgeHours: number;
  readonly timeoutMs: number;
  private transport?: Transporter;

  constructor(private readonly cfg: EmailConfig) {
    this.retry = cfg.retry;
    this.maxAttempts = cfg.maxAttempts;
    this.maxAgeHours = cfg.maxAgeHours;
    // Connecting, the greeting and the exchange each have the limit.
    this.timeoutMs = 3 * cfg.smtp.timeoutMs;
  }

  private running = false;

  start(): void {
    this.running = true;
  }

  /** nodemailer is loaded with the first mail: a gateway that never mails does not carry it. */
  private async connect(): Promise<Transporter | undefined> {
    if (this.transport) return this.transport;
    const { default: nodemailer } = await import('nodemailer');
    if (!this.running) return undefined;
    const s = this.cfg.smtp;
    const pass = smtpPass(this.cfg);
    this.transport = nodemailer.createTransport({
      host: s.host,
      port: s.port,
      secure: s.secure,
      auth: s.user !== undefined ? { user: s.user, pass: pass ?? '' } : undefined,
      connectionTimeout: s.timeoutMs,
      greetingTimeout: s.timeoutMs,
      socketTimeout: s.timeoutMs,
      tls: { rejectUnauthorized: s.rejectUnauthorized },
    });
    return this.transport;
  }

  stop(): void {
    this.running = false;
    this.transport?.close();
    this.transport = undefined;
  }

  /** The recipients of a ticket: everybody in `to`, its priority's, and the safety list for safety tickets. */
  recipients(priority: Priority, cls: string): string[] {
    const all = [...this.cfg.to, ...(this.cfg.byPriority[priority] ?? [])];
    if (cls === 'safety') all.push(...this.cfg.safety);
    return [...new Set(all)];
  }

  wants(e: TicketEvent): { target?: unknown } | false {
    const lang = new Map<string, Language>();
    if (this.cfg.events.includes(`ticket.${e.type}`))
      for (const a of this.recipients(e.ticket.priority, e.ticket.class))
        lang.set(a, this.cfg.languages[a] ?? this.cfg.language);
    // The contact a ticket has escalated to is mailed, in the same message as everybody else who
    // reads its language.
    for (const c of escalatedContacts(e))
      if (c.email !== undefined)
        lang.set(c.email, c.language ?? this.cfg.languages[c.email] ?? this.cfg.language);
    if (lang.size === 0) return false;
    const groups = new Map<Language, string[]>();
    for (const [a, l] of lang) groups.set(l, [...(groups.get(l) ?? []), a]);
    const target: MailTarget = {
      to: [...lang.keys()],
      groups: [...groups].map(([language, to]) => ({ language, to })),
    };
    return { target };
  }

  async deliver(row: QueueRow, _now: number, signal: AbortSignal): Promise<Outcome> {
    const transport = this.running ? await this.connect() : undefined;
    if (!transport) return { kind: 'retry', status: null, error: 'GW_ERR_EMAIL: not started' };
    // Stopping closes the connection instead of waiting out the SMTP timeouts; the mail stays queued.
    const onAbort = () => transport.close();
    signal.addEventListener('abort', onAbort, { once: true });
    const p = JSON.parse(row.body) as NotifyPayload;
    const target = JSON.parse(row.target ?? '{"to":[]}') as MailTarget;
    const groups = target.groups ?? [{ language: 'en', to: target.to }];
    try {
      for (const g of groups) {
        const m = eventText(p, g.language);
        // A retry after a partial send mails a group again under the same Message-ID: a mailbox can tell.
        const suffix = groups.length > 1 ? `.${g.language}` : '';
        await transport.sendMail({
          from: this.cfg.from,
          to: g.to,
          subject: m.subject,
          text: m.text,
          // The event id as the Message-ID: a relay or mailbox that sees it twice can tell.
          messageId: `<${p.id}${suffix}@facility-gateway>`,
          headers: { 'X-Gateway-Event': p.type, 'Idempotency-Key': p.id, 'Content-Language': g.language },
        });
      }
      return { kind: 'delivered', status: null };
    } catch (err) {
      return mailFailure(err);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** One test mail (the dashboard's "send test"), its outcome judged as a delivery's. */
  async sendTest(to: string[], subject: string, text: string): Promise<Outcome> {
    const transport = this.running ? await this.connect() : undefined;
    if (!transport) return { kind: 'retry', status: null, error: 'GW_ERR_EMAIL: not started' };
    try {
      await transport.sendMail({
        from: this.cfg.from,
        to,
        subject,
        text,
        headers: { 'X-Gateway-Event': 'ticket.test' },
      });
      return { kind: 'delivered', status: null };
    } catch (err) {
      return mailFailure(err);
    }
  }
}

/**
 * 5xx from the server: refused for good (unknown mailbox), except a failed sign-in, which is the
 * gateway's configuration and holds the line until fixed; anything else may pass later.
 */
function mailFailure(err: unknown): Outcome {
  const e = err as Error & { responseCode?: number; code?: string };
  const error = `GW_ERR_EMAIL: ${e.code ?? ''} ${e.message}`.trim();
  if (e.responseCode !== undefined && e.responseCode >= 500 && !SMTP_AUTH_FAILED.has(e.responseCode))
    return { kind: 'dead', status: e.responseCode, error };
  return { kind: 'retry', status: e.responseCode ?? null, error };
}

/** The contacts an event's `escalate` lines reached (level order). */
export function escalatedContacts(e: { entries: readonly HistoryEntry[] }): Contact[] {
  const out: Contact[] = [];
  for (const h of e.entries) {
    const c = h.action === 'escalate' ? (h.data?.contact as Contact | undefined) : undefined;
    if (c) out.push(c);
  }
  return out;
}

/** Subject and plain text of a ticket event's mail, in English or the language given. */
export function mailOf(p: NotifyPayload, lang: Language = 'en'): { subject: string; text: string } {
  return eventText(p, lang);
}

/** English is the payload as it always was: only another language is named. */
function languageOf(l: Language): { language?: Language } {
  return l === 'en' ? {} : { language: l };
}
