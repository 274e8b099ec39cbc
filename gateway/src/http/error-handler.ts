import type { FastifyError, FastifyInstance } from 'fastify';
import type { Logger } from '../core/log.js';
import { ERROR_CATALOGUE, errorBody, HttpError, isErrorCode, type ErrorCode } from './errors.js';

/** One failing field of a request, e.g. `{path: 'body.untilMs', message: 'give exactly one of ...'}`. */
export interface Issue {
  path: string;
  message: string;
}

const WHERE: Record<string, string> = { querystring: 'query', body: 'body', params: 'params', headers: 'headers' };

/** Each schema failure with its key path (`body.untilMs`), unknown keys named. */
export function issuesOf(err: FastifyError): Issue[] {
  const where = WHERE[err.validationContext ?? 'body'] ?? 'body';
  return (err.validation ?? []).map((v) => {
    const keys = v.keyword === 'unrecognized_keys' ? (v.params as { keys?: unknown }).keys : undefined;
    const path = [where, ...v.instancePath.split('/').filter((s) => s !== '')].join('.');
    const unknown = Array.isArray(keys) ? `: unknown key ${keys.join(', ')}` : '';
    return { path, message: `${v.message ?? 'invalid'}${unknown}` };
  });
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
      if (err.status >= 500) log.error({ err, url: req.url }, 'request failed');
      return reply.code(err.status).send(errorBody(err.code, err.message, err.extra));
    }
    if (err.validation) {
      const issues = issuesOf(err);
      return reply
        .code(400)
        .send(
          errorBody('GW_ERR_BAD_REQUEST', issues.map((i) => `${i.path}: ${i.message}`).join('; '), { issues }),
        );
    }
    if (isErrorCode(err.code)) {
      // A domain error (AlarmError, TicketError, TokenError) carries its catalogue code.
      return reply.code(ERROR_CATALOGUE[err.code].status).send(errorBody(err.code, err.message));
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
export function badRequestOf(error: { issues: readonly { path: PropertyKey[]; message: string; code: string }[] }, where: string): HttpError {
  const issues = error.issues.map((i) => {
    const keys = i.code === 'unrecognized_keys' ? (i as unknown as { keys: string[] }).keys : undefined;
    return {
      path: [where, ...i.path.map(String)].join('.'),
      message: `${i.message}${keys ? `: unknown key ${keys.join(', ')}` : ''}`,
    };
  });
  return new HttpError('GW_ERR_BAD_REQUEST', issues.map((i) => `${i.path}: ${i.message}`).join('; '), { issues });
}
