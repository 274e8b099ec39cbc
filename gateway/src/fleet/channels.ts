import { z } from 'zod';
import type { Logger } from '../core/log.js';
import {
  emailSchema,
  webhookSchema,
  type EmailConfig,
  type NotificationsConfig,
  type WebhookConfig,
} from '../notifications/schema.js';
import type { OverrideProblem } from './rule-overrides.js';
import type { SecretBox } from './secret-box.js';

/**
 * Notification channels changed by operators (entity `channel`, ADR 0144). The setting (audited,
 * in the history) holds everything but the secrets; the secrets (a webhook's signing secret and
 * header values, the SMTP password) sit sealed in `fleet_secret`, written in the same transaction.
 * Key `webhook:<name>` for a webhook, `email` for the email channel.
 */
export const storedWebhookSchema = z.strictObject({
  kind: z.literal('webhook'),
  /** The webhook as the file's schema parsed it, without `secret` and header values. */
  webhook: z.record(z.string(), z.unknown()),
  /** The names of its headers (their values are secrets). */
  headers: z.array(z.string()),
  /** Left out of the channels in force; its settings and secrets kept. */
  disabled: z.boolean(),
  /** Counts the edits that changed a secret, so such an edit is in the history too. */
  secretsRev: z.number().int().min(0),
});
export const storedEmailSchema = z.strictObject({
  kind: z.literal('email'),
  /** The email channel as the file's schema parsed it, without `smtp.pass`. */
  email: z.record(z.string(), z.unknown()),
  secretsRev: z.number().int().min(0),
});
export const storedChannelSchema = z.discriminatedUnion('kind', [storedWebhookSchema, storedEmailSchema]);
export type StoredWebhook = z.infer<typeof storedWebhookSchema>;
export type StoredEmail = z.infer<typeof storedEmailSchema>;
export type StoredChannel = z.infer<typeof storedChannelSchema>;

const secretsSchema = z.strictObject({
  secret: z.string().optional(),
  headers: z.record(z.string(), z.string()).default({}),
  pass: z.string().optional(),
});
type Secrets = z.infer<typeof secretsSchema>;

export const webhookKey = (name: string): string => `webhook:${name}`;
export const EMAIL_KEY = 'email';

/** An operator's webhook as sent: secrets optional (absent: the stored ones are kept). */
export interface WebhookInput {
  name: string;
  secret?: string;
  secretEnv?: string;
  /** A value null keeps the stored value of that header; a header not listed is removed. */
  headers?: Record<string, string | null>;
  disabled?: boolean;
  [field: string]: unknown;
}

export interface EmailInput {
  smtp?: { pass?: string; passEnv?: string; [field: string]: unknown };
  [field: string]: unknown;
}

export class ChannelProblem extends Error {
  constructor(readonly problems: OverrideProblem[]) {
    super(problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; '));
  }
}

/** What a write of a channel comes to: the audited setting and its sealed secrets. */
export interface ChannelWrite {
  key: string;
  value: StoredChannel;
  sealed: string;
}

function issues(err: z.ZodError, at: string[] = []): ChannelProblem {
  return new ChannelProblem(
    err.issues.map((i) => ({ path: [...at, ...i.path].join('.'), message: i.message })),
  );
}

/** The channels operators changed, with their secrets opened, layered over the file's. */
export class ChannelSettings {
  private stored = new Map<string, StoredChannel>();
  private secrets = new Map<string, Secrets>();

  constructor(readonly box: SecretBox) {}

  /** Takes the rows read from the store (settings by key, sealed secrets by key). */
  load(
    settings: ReadonlyArray<{ key: string; value: unknown }>,
    sealed: Map<string, string>,
    log: Logger,
  ): void {
    const stored = new Map<string, StoredChannel>();
    const secrets = new Map<string, Secrets>();
    for (const s of settings) {
      const r = storedChannelSchema.safeParse(s.value);
      if (!r.success) {
        log.error({ key: s.key, err: r.error.message }, 'a stored channel is invalid; ignored');
        continue;
      }
      stored.set(s.key, r.data);
      const raw = sealed.get(s.key);
      if (raw === undefined) continue;
      try {
        secrets.set(s.key, secretsSchema.parse(this.box.open(raw)));
      } catch (err) {
        // Never the secret itself in the log: only why it could not be read.
        log.error({ key: s.key, err: (err as Error).message }, "a stored channel's secrets cannot be read");
      }
    }
    this.stored = stored;
    this.secrets = secrets;
  }

  /** Applies a write already committed (or a removal, value null) to what is held. */
  set(key: string, value: StoredChannel | null, secrets: Secrets | undefined): void {
    if (value === null) {
      this.stored.delete(key);
      this.secrets.delete(key);
      return;
    }
    this.stored.set(key, value);
    if (secrets) this.secrets.set(key, secrets);
  }

  get(key: string): StoredChannel | undefined {
    return this.stored.get(key);
  }

  keys(): string[] {
    return [...this.stored.keys()];
  }

  /** A stored webhook made whole (settings and secrets) and checked by the file's schema again. */
  private fullWebhook(s: StoredWebhook, key: string): WebhookConfig | z.ZodError {
    const sec = this.secrets.get(key) ?? { headers: {} };
    const headers = Object.fromEntries(s.headers.map((h) => [h, sec.headers[h] ?? '']));
    const w = { ...s.webhook, headers, ...(sec.secret !== undefined ? { secret: sec.secret } : {}) };
    const r = webhookSchema.safeParse(w);
    return r.success ? r.data : r.error;
  }

  private fullEmail(s: StoredEmail, key: string): EmailConfig | z.ZodError {
    const pass = this.secrets.get(key)?.pass;
    const smtp = { ...(s.email.smtp as Record<string, unknown>), ...(pass !== undefined ? { pass } : {}) };
    const r = emailSchema.safeParse({ ...s.email, smtp });
    return r.success ? r.data : r.error;
  }

  /**
   * The file's channels with the operators' on top: an operator's webhook replaces the file's of the
   * same name, a disabled one is left out, the operator's email channel replaces the file's. One
   * that no longer passes the schema is left out and logged, never fatal.
   */
  layer(file: NotificationsConfig, log?: Logger): NotificationsConfig {
    const hooks = new Map(file.webhooks.map((w) => [w.name, w]));
    let email = file.email;
    for (const [key, s] of this.stored) {
      if (s.kind === 'email') {
        const e = this.fullEmail(s, key);
        if (e instanceof z.ZodError)
          log?.error({ key, err: e.message }, 'stored email channel invalid; skipped');
        else email = e;
        continue;
      }
      const name = key.slice('webhook:'.length);
      if (s.disabled) {
        hooks.delete(name);
        continue;
      }
      const w = this.fullWebhook(s, key);
      if (w instanceof z.ZodError) log?.error({ key, err: w.message }, 'stored webhook invalid; skipped');
      else hooks.set(name, w);
    }
    return { ...file, webhooks: [...hooks.values()], email };
  }

  /** A webhook as it stands (operator's, or the file's), whole, enabled or not. */
  webhookNow(name: string, file: NotificationsConfig): WebhookConfig | undefined {
    const key = webhookKey(name);
    const s = this.stored.get(key);
    if (s?.kind === 'webhook') {
      const w = this.fullWebhook(s, key);
      return w instanceof z.ZodError ? undefined : w;
    }
    return file.webhooks.find((w) => w.name === name);
  }

  /**
   * An operator's webhook checked by the file's schema: a secret or header value not sent keeps the
   * one in force (the operator's, else the file's). Throws ChannelProblem with key paths.
   */
  prepareWebhook(input: WebhookInput, file: NotificationsConfig): ChannelWrite {
    const { secret, secretEnv, headers, disabled, ...rest } = input;
    const key = webhookKey(input.name);
    const prev = this.webhookNow(input.name, file);
    const prevStored = this.stored.get(key);
    const cand: Record<string, unknown> = { ...rest };
    if (secretEnv !== undefined) cand.secretEnv = secretEnv;
    else if (secret !== undefined) cand.secret = secret;
    else if (prev?.secretEnv !== undefined) cand.secretEnv = prev.secretEnv;
    else if (prev?.secret !== undefined) cand.secret = prev.secret;
    const problems: OverrideProblem[] = [];
    const hdrs: Record<string, string> = {};
    for (const [h, v] of Object.entries(headers ?? prev?.headers ?? {})) {
      const kept = v ?? prev?.headers[h];
      if (kept === undefined)
        problems.push({ path: `headers.${h}`, message: 'no stored value to keep; send one' });
      else hdrs[h] = kept;
    }
    if (problems.length) throw new ChannelProblem(problems);
    cand.headers = hdrs;
    const r = webhookSchema.safeParse(cand);
    if (!r.success) throw issues(r.error);
    const { secret: sec, headers: hv, ...pub } = r.data;
    const secrets: Secrets = { headers: hv, ...(sec !== undefined ? { secret: sec } : {}) };
    const changed = !prev || prev.secret !== sec || JSON.stringify(prev.headers) !== JSON.stringify(hv);
    const rev = prevStored?.secretsRev ?? 0;
    const value: StoredWebhook = {
      kind: 'webhook',
      webhook: JSON.parse(JSON.stringify(pub)) as Record<string, unknown>,
      headers: Object.keys(hv),
      disabled: disabled ?? false,
      secretsRev: changed ? rev + 1 : rev,
    };
    return { key, value, sealed: this.box.seal(secrets) };
  }

  /** The operator's email channel checked by the file's schema; the password not sent is kept. */
  prepareEmail(input: EmailInput, file: NotificationsConfig): ChannelWrite {
    const cur = this.stored.get(EMAIL_KEY);
    const prev = cur?.kind === 'email' ? this.fullEmail(cur, EMAIL_KEY) : file.email;
    const prevSmtp = prev instanceof z.ZodError ? undefined : prev.smtp;
    const prevPass = prevSmtp?.pass;
    const smtp = { ...(input.smtp ?? {}) };
    // Neither sent: the password in force stays, as a value or as the variable that holds it.
    if (smtp.pass === undefined && smtp.passEnv === undefined) {
      if (prevSmtp?.passEnv !== undefined) smtp.passEnv = prevSmtp.passEnv;
      else if (prevPass !== undefined) smtp.pass = prevPass;
    }
    const r = emailSchema.safeParse({ ...input, smtp });
    if (!r.success) throw issues(r.error);
    const env = r.data.smtp.passEnv;
    if (env !== undefined && process.env[env] === undefined)
      throw new ChannelProblem([{ path: 'smtp.passEnv', message: `environment variable ${env} is not set` }]);
    const { pass, ...smtpPub } = r.data.smtp;
    const rev = cur?.secretsRev ?? 0;
    const value: StoredEmail = {
      kind: 'email',
      email: JSON.parse(JSON.stringify({ ...r.data, smtp: smtpPub })) as Record<string, unknown>,
      secretsRev: pass !== prevPass ? rev + 1 : rev,
    };
    return {
      key: EMAIL_KEY,
      value,
      sealed: this.box.seal(pass !== undefined ? { pass, headers: {} } : { headers: {} }),
    };
  }

  /** The secrets a prepared write holds, opened again (to keep in memory once committed). */
  opened(w: ChannelWrite): Secrets {
    return secretsSchema.parse(this.box.open(w.sealed));
  }
}

/** A webhook as the API shows it: every secret replaced by whether one is set. */
export function webhookView(w: WebhookConfig): Record<string, unknown> {
  const { secret, headers, ...rest } = w;
  return {
    ...rest,
    secretSet: secret !== undefined || w.secretEnv !== undefined,
    headers: Object.fromEntries(Object.keys(headers).map((h) => [h, '(secret)'])),
  };
}

export function emailView(e: EmailConfig): Record<string, unknown> {
  const { pass, ...smtp } = e.smtp;
  return { ...e, smtp: { ...smtp, passSet: pass !== undefined || smtp.passEnv !== undefined } };
}
