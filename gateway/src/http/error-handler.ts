import type { FastifyError, FastifyInstance } from 'fastify';
import type { AccountErrorCode } from '../accounts/types.js';
import type { AlarmErrorCode } from '../alarms/types.js';
import type { Logger } from '../core/log.js';
import type { TicketErrorCode } from '../workorders/types.js';
import type { TokenErrorCode } from './token-db.js';
import { ERROR_CATALOGUE, errorBody, HttpError, isErrorCode, type ErrorCode } from './errors.js';

/** Every code a domain error carries to this handler is in the catalogue: a type error otherwise. */
type DomainCode = AlarmErrorCode | TicketErrorCode | TokenErrorCode | AccountErrorCode;
export const DOMAIN_CODES_CATALOGUED: DomainCode extends ErrorCode ? true : never = true;

/** One failing field of a request, e.g. `{path: 'body.untilMs', message: 'give exactly one of ...'}`. */
export interface Issue {
  path: string;
  message: string;
}

const WHERE: Record<string, string> = {
  querystring: 'query',
  body: 'body',
  params: 'params',
  headers: 'headers',
};

/** One issue as the answer shows it; an unknown key is named as its own path (`body.colour: unknown key`). */
function toIssues(where: string, path: readonly string[], message: string, keys: unknown): Issue[] {
  if (Array.isArray(keys) && keys.length > 0)
    return keys.map((k) => ({ path: [where, ...path, String(k)].join('.'), message: 'unknown key' }));
  return [{ path: [where, ...path].join('.'), message }];
}

/** Each schema failure with its key path (`body.untilMs`), unknown keys named. */
export function issuesOf(err: FastifyError): Issue[] {
  const where = WHERE[err.validationContext ?? 'body'] ?? 'body';
  return (err.validation ?? []).flatMap((v) =>
    toIssues(
      where,
      v.instancePath.split('/').filter((s) => s !== ''),
      v.message ?? 'invalid',
      v.keyword === 'unrecognized_keys' ? (v.params as { keys?: unknown }).keys : undefined,
    ),
  );
}

/** The catalogue code for a status that carries no code of the catalogue (fastify's own errors). */
function codeOfStatus(status: number): ErrorCode {
  switch (status) {
    case 401:
      return 'GW_ERR_UNAUTHORIZED';
    case 403:
      return 'GW_ERR_FORBIDDEN';
    case 404:
      return 'GW_ERR_NOT_FOUND';
    case 409:
      return 'GW_ERR_CONFLICT';
    case 413:
      return 'GW_ERR_PAYLOAD_TOO_LARGE';
    case 415:
      return 'GW_ERR_UNSUPPORTED_MEDIA_TYPE';
    case 502:
      return 'GW_ERR_UPSTREAM';
    case 503:
      return 'GW_ERR_UNAVAILABLE';
    default:
      return status >= 500 ? 'GW_ERR_INTERNAL' : 'GW_ERR_BAD_REQUEST';
  }
}

/**
 * The one error handler: every failure of every route is answered from the catalogue as
 * `{"error": {code, message, retryable, ...}}`. Schema failures are 400 GW_ERR_BAD_REQUEST with each
 * failing field's path; domain errors (alarms, tickets, tokens) keep their own catalogue codes.
 */
export function installErrorHandler(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError & { status?: unknown }, req, reply) => {
    if (err instanceof HttpError) {
      // A dependency away (retryable) is the caller's news, told in the answer (a chart polling a store
      // without history would flood the log); a fault of the gateway is an error.
      if (err.status >= 500) log[err.retryable ? 'debug' : 'error']({ err, url: req.url }, 'request failed');
      return reply.code(err.status).send(errorBody(err.code, err.message, err.extra));
    }
    if (err.validation) {
      const issues = issuesOf(err);
      return reply.code(400).send(
        errorBody('GW_ERR_BAD_REQUEST', issues.map((i) => `${i.path}: ${i.message}`).join('; '), {
          issues,
        }),
      );
    }
    if (isErrorCode(err.code)) {
      // A domain error (AlarmError, TicketError, TokenError) carries its catalogue code.
      const extra = (err as { extra?: Record<string, unknown> }).extra;
      return reply.code(ERROR_CATALOGUE[err.code].status).send(errorBody(err.code, err.message, extra));
    }
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) {
      // A response that breaks its own schema lands here too: the cause names the field.
      log.error({ err, cause: err.cause, url: req.url }, 'request failed');
      return reply.code(status).send(errorBody(codeOfStatus(status), 'internal error (logged)'));
    }
    return reply.code(status).send(errorBody(codeOfStatus(status), err.message));
  });
}

/** A 400 from a zod failure checked by hand (a body read only after its signature is verified). */
export function badRequestOf(
  error: { issues: readonly { path: PropertyKey[]; message: string; code: string }[] },
  where: string,
): HttpError {
  const issues = error.issues.flatMap((i) =>
    toIssues(
      where,
      i.path.map(String),
      i.message,
      i.code === 'unrecognized_keys' ? (i as unknown as { keys: unknown }).keys : undefined,
    ),
  );
  return new HttpError('GW_ERR_BAD_REQUEST', issues.map((i) => `${i.path}: ${i.message}`).join('; '), {
    issues,
  });
}
