import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { emailView, webhookKey, webhookView, EMAIL_KEY } from '../../fleet/channels.js';
import type { FleetService } from '../../fleet/service.js';
import { sendTestNotification } from '../../notifications/test-send.js';
import { HttpError } from '../errors.js';
import { authErrors, errorSchema } from '../schemas/common.js';
import { changeResult } from '../schemas/fleet.js';
import {
  channelNoteQuery,
  channelsSchema,
  channelTestBody,
  channelTestResult,
  emailBody,
  webhookBody,
  webhookParams,
  type ChannelsJson,
} from '../schemas/fleet-channels.js';
import { changeToJson } from './fleet.js';
import { refused } from './fleet-errors.js';

export interface FleetChannelRouteDeps {
  fleet: FleetService;
}

const answers = { 200: changeResult, 400: errorSchema, 404: errorSchema, 409: errorSchema, ...authErrors };

/**
 * Notification channels from the dashboard (docs/fleet.md, ADR 0144): viewer reads them without
 * secrets, admin creates, edits, disables and tests them. The next notification uses the change.
 */
export const fleetChannelRoutes: FastifyPluginAsyncZod<FleetChannelRouteDeps> = async (app, deps) => {
  const { fleet } = deps;

  app.get(
    '/api/fleet/channels',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'The notification channels (file and operators), secrets never included',
        response: { 200: channelsSchema, ...authErrors },
      },
    },
    async (): Promise<ChannelsJson> => {
      const c = fleet.listChannels();
      const origin = (key: string) => (c.stored.has(key) ? ('database' as const) : ('file' as const));
      const webhooks = c.effective.webhooks.map((w) => ({
        ...webhookView(w),
        name: w.name,
        url: w.url,
        origin: origin(webhookKey(w.name)),
        disabled: false,
        secretSet: w.secret !== undefined || w.secretEnv !== undefined,
        headers: Object.fromEntries(Object.keys(w.headers).map((h) => [h, '(secret)' as const])),
        usedBy: c.usedBy(w.name),
      }));
      for (const [key, s] of c.stored) {
        if (s.kind !== 'webhook' || !s.disabled) continue;
        const name = key.slice('webhook:'.length);
        const w = fleet.webhookNow(name);
        if (!w) continue;
        webhooks.push({
          ...webhookView(w),
          name,
          url: w.url,
          origin: 'database',
          disabled: true,
          secretSet: w.secret !== undefined || w.secretEnv !== undefined,
          headers: Object.fromEntries(Object.keys(w.headers).map((h) => [h, '(secret)' as const])),
          usedBy: c.usedBy(name),
        });
      }
      webhooks.sort((a, b) => a.name.localeCompare(b.name));
      const e = emailView(c.effective.email);
      return {
        webhooks,
        email: {
          ...e,
          origin: origin(EMAIL_KEY),
          enabled: c.effective.email.enabled,
          smtp: e.smtp as { passSet: boolean },
        },
      };
    },
  );

  app.put(
    '/api/fleet/channels/webhooks',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Creates or edits a webhook channel (a secret not sent is kept); applied at once',
        body: webhookBody,
        response: answers,
      },
    },
    async (req) => {
      const { note, ...input } = req.body;
      const c = await fleet.putWebhook(input, req.principal!.name, note ?? null).catch(refused);
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.delete(
    '/api/fleet/channels/webhooks/:name',
    {
      config: { role: 'admin' },
      schema: {
        summary: "Removes an operator's webhook (refused while contacts name it)",
        params: webhookParams,
        querystring: channelNoteQuery,
        response: answers,
      },
    },
    async (req) => {
      const c = await fleet
        .removeWebhook(req.params.name, req.principal!.name, req.query.note ?? null)
        .catch(refused);
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.put(
    '/api/fleet/channels/email',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Sets the email channel (SMTP relay, sender, recipients; the password not sent is kept)',
        body: emailBody,
        response: answers,
      },
    },
    async (req) => {
      const { note, ...input } = req.body;
      const c = await fleet.putEmail(input, req.principal!.name, note ?? null).catch(refused);
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.delete(
    '/api/fleet/channels/email',
    {
      config: { role: 'admin' },
      schema: {
        summary: "Removes the operators' email settings: the file's apply again",
        querystring: channelNoteQuery,
        response: answers,
      },
    },
    async (req) => {
      const c = await fleet.removeEmail(req.principal!.name, req.query.note ?? null).catch(refused);
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.post(
    '/api/fleet/channels/test',
    {
      config: { role: 'admin' },
      schema: {
        summary: "Sends a test notification through a channel in force and answers the channel's verdict",
        body: channelTestBody,
        response: { 200: channelTestResult, 400: errorSchema, 404: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const n = fleet.listChannels().effective;
      const out = await sendTestNotification(n, req.body.channel, req.body.to);
      if (!out) throw new HttpError('GW_ERR_NOT_FOUND', `no channel ${req.body.channel} in force`);
      req.log.info(
        { channel: req.body.channel, verdict: out.kind, status: out.status },
        'test notification sent',
      );
      return {
        channel: req.body.channel,
        verdict: out.kind,
        status: out.status,
        error: out.kind === 'delivered' ? null : out.error,
      };
    },
  );
};
