import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SharedView } from '../view/types.js';
import { HttpError } from './errors.js';

/** Set on a request one instance forwards to another: the receiver never forwards it again. */
export const FORWARDED_HEADER = 'x-gateway-forwarded-by';
/** On the answer: the instance that holds the record and made the change. */
export const HOLDER_HEADER = 'x-gateway-holder';

const TIMEOUT_MS = 10_000;

/**
 * Cluster mode (ADR 0157): a change to an alarm or ticket this instance does not hold is sent, as
 * the caller sent it, to the instance that holds it (its URL from `cluster_members`), and its answer
 * is passed back. The caller's own credentials go along (bearer token or session cookie), so the
 * holder checks the role again; the cookie's same-origin check was made here, where the browser
 * sent it. An unknown record is 404; a holder that is not reachable is 503 naming it.
 */
export async function forwardToHolder(
  req: FastifyRequest,
  reply: FastifyReply,
  view: SharedView,
  kind: 'alarm' | 'ticket',
  id: string,
): Promise<void> {
  const notFound =
    kind === 'alarm'
      ? new HttpError('GW_ERR_ALARM_NOT_FOUND', `alarm ${id} not found`)
      : new HttpError('GW_ERR_TICKET_NOT_FOUND', `ticket ${id} not found`);
  const holder = await fromView(view.holder(kind, id));
  if (!holder) throw notFound;
  const extra = { holder: holder.instanceId };
  // The view still names this instance, which no longer holds it: its partition is being handed
  // over and the next owner has not taken it yet (ADR 0160). Retryable, never applied to a stale copy.
  if (holder.instanceId === view.instanceId)
    throw new HttpError(
      'GW_ERR_HOLDER_UNAVAILABLE',
      `${kind} ${id} is being handed over to another cluster instance with its device's partition; try again`,
      extra,
    );
  if (req.headers[FORWARDED_HEADER] !== undefined || holder.url === null)
    throw new HttpError(
      'GW_ERR_HOLDER_UNAVAILABLE',
      `${kind} ${id} is held by cluster instance "${holder.instanceId}", which ` +
        (holder.url === null ? 'is not a live member now' : 'does not hold it either (its copy is behind)'),
      extra,
    );
  const headers: Record<string, string> = { [FORWARDED_HEADER]: view.instanceId };
  for (const h of ['authorization', 'cookie', 'content-type'] as const) {
    const v = req.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  // The browser's origin was checked on this instance; the holder hears it as a same-origin change.
  if (headers.cookie !== undefined) headers['sec-fetch-site'] = 'same-origin';
  let res: Response;
  try {
    res = await fetch(new URL(req.url, holder.url), {
      method: req.method,
      headers,
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    throw new HttpError(
      'GW_ERR_HOLDER_UNAVAILABLE',
      `${kind} ${id} is held by cluster instance "${holder.instanceId}" at ${holder.url}, which did not answer: ${(err as Error).message}`,
      extra,
    );
  }
  const body: unknown = await res.json().catch(() => null);
  await reply.code(res.status).header(HOLDER_HEADER, holder.instanceId).send(body);
}

/**
 * A read of the shared view: PostgreSQL not reachable is 503 (retryable) with the reason, not a
 * fault of the gateway. This instance's own records stay readable one by one from its own store.
 */
export async function fromView<T>(read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (err) {
    throw new HttpError(
      'GW_ERR_UNAVAILABLE',
      `the cluster's shared view (PostgreSQL) cannot be read now: ${(err as Error).message}`,
    );
  }
}
