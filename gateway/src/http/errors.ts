/**
 * The HTTP API's error catalogue: every code a route can answer with, its status, whether the same
 * request may succeed later, and what it means. The OpenAPI document and docs/api.md list it; the
 * one error handler (error-handler.ts) answers every failure from it as
 * `{"error": {"code", "message", "retryable", ...}}`. The dashboard's type-check reads this file
 * (through schemas/): it imports nothing.
 */
export interface ErrorEntry {
  status: number;
  /** The same request may succeed later (the service or a dependency was busy or away). */
  retryable: boolean;
  /** What the code means in general; the answer's message says what happened this time. */
  message: string;
}

export const ERROR_CATALOGUE = {
  GW_ERR_BAD_REQUEST: {
    status: 400,
    retryable: false,
    message: 'the request breaks its schema; the message names each failing field, e.g. `body.untilMs`',
  },
  GW_ERR_UNAUTHORIZED: {
    status: 401,
    retryable: false,
    message: 'no bearer token, or an unknown, revoked or expired one',
  },
  GW_ERR_FORBIDDEN: { status: 403, retryable: false, message: "the token's role is too weak for the route" },
  GW_ERR_NOT_FOUND: { status: 404, retryable: false, message: 'no such route or device' },
  GW_ERR_CONFLICT: {
    status: 409,
    retryable: false,
    message: 'a bare device id that exists at several sites: use site/device',
  },
  GW_ERR_PAYLOAD_TOO_LARGE: { status: 413, retryable: false, message: 'the body is larger than allowed' },
  GW_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, message: 'a body that is not JSON' },
  GW_ERR_INTERNAL: { status: 500, retryable: false, message: 'a fault in the gateway (logged)' },
  GW_ERR_UPSTREAM: {
    status: 502,
    retryable: true,
    message: 'InfluxDB answered with an error while reading history',
  },
  GW_ERR_UNAVAILABLE: {
    status: 503,
    retryable: true,
    message:
      'a dependency is disabled or not reachable (e.g. InfluxDB for history), or too many live clients',
  },
  GW_ERR_HOLDER_UNAVAILABLE: {
    status: 503,
    retryable: true,
    message:
      'cluster mode: the alarm or ticket is held by another instance (named in `holder`) that cannot be reached now',
  },
  GW_ERR_ALARM_NOT_FOUND: { status: 404, retryable: false, message: 'no such alarm or active shelf' },
  GW_ERR_ALARM_ALREADY_ACKED: { status: 409, retryable: false, message: 'the alarm is acknowledged already' },
  GW_ERR_WINDOW_ENDED: { status: 409, retryable: false, message: 'the maintenance window has ended already' },
  GW_ERR_ALARM_BAD_REQUEST: {
    status: 400,
    retryable: false,
    message: 'the alarm service refused the request (e.g. a shelf ending in the past)',
  },
  GW_ERR_TICKET_NOT_FOUND: { status: 404, retryable: false, message: 'no such work order' },
  GW_ERR_TICKET_TRANSITION: {
    status: 409,
    retryable: false,
    message: "the action is not allowed in the ticket's status (see allowedActions)",
  },
  GW_ERR_TICKET_VERIFY: {
    status: 409,
    retryable: false,
    message: 'four eyes: the resolver cannot verify, and a fix is verified before the ticket closes',
  },
  GW_ERR_TICKET_BAD_REQUEST: {
    status: 400,
    retryable: false,
    message: 'the action lacks what it needs (an assignee, a completion form)',
  },
  GW_ERR_TOKEN_EXISTS: { status: 409, retryable: false, message: 'a token of that name exists' },
  GW_ERR_CHANNEL_IN_USE: {
    status: 409,
    retryable: false,
    message: 'contacts reach people through the webhook (`contacts` names them): change them first',
  },
  GW_ERR_TOKEN_NOT_FOUND: { status: 404, retryable: false, message: 'no token of that name' },
  GW_ERR_TOKEN_READONLY: {
    status: 409,
    retryable: false,
    message: 'a token from the config file: change it there',
  },
  GW_ERR_CONFIG_INVALID: {
    status: 400,
    retryable: false,
    message: 'the config file is invalid; nothing was changed (`problems` lists each key path)',
  },
  GW_ERR_PINNED: {
    status: 409,
    retryable: false,
    message:
      'the value is pinned in the config file (`fleet.pinned`); the message names the pin: change it there',
  },
  GW_ERR_NOTIFY_NOT_DEAD: { status: 404, retryable: false, message: 'no dead notification with that seq' },
  GW_ERR_WEBHOOK_SIGNATURE: {
    status: 401,
    retryable: false,
    message: 'the inbound webhook has no valid signature',
  },
  GW_ERR_WEBHOOK_STALE: {
    status: 401,
    retryable: false,
    message: "the inbound webhook's timestamp is outside the tolerance",
  },
  GW_ERR_WEBHOOK_REPLAY: {
    status: 409,
    retryable: false,
    message: 'the idempotency key was used already; nothing applied',
  },
  GW_ERR_REPORT_READ_RATES: {
    status: 502,
    retryable: true,
    message: "an ended month's read rates could not be read from InfluxDB",
  },
  GW_ERR_REPORT_NOT_GENERATED: {
    status: 404,
    retryable: false,
    message: "that month's report was not generated (yet): it is generated after the month ends",
  },
  GW_ERR_USER_EXISTS: { status: 409, retryable: false, message: 'a user of that name exists' },
  GW_ERR_USER_NOT_FOUND: { status: 404, retryable: false, message: 'no user of that name' },
  GW_ERR_PASSWORD_WEAK: {
    status: 400,
    retryable: false,
    message: 'the new password is too short, too long or the same as the current one',
  },
  GW_ERR_SIGN_IN_FAILED: {
    status: 401,
    retryable: false,
    message: 'wrong username or password, a disabled account, or a used or expired sign-in link',
  },
  GW_ERR_SIGN_IN_LOCKED: {
    status: 429,
    retryable: true,
    message: 'too many failed sign-ins for the account or the address: locked for a while',
  },
  GW_ERR_SSO_NO_ROLE: {
    status: 403,
    retryable: false,
    message: "single sign-on: the identity provider's account has no claim value mapped to a role",
  },
  GW_ERR_CROSS_SITE: {
    status: 403,
    retryable: false,
    message: 'a cookie-authenticated change sent from another origin (cross-site request refused)',
  },
  GW_ERR_PASSWORD_CHANGE_REQUIRED: {
    status: 403,
    retryable: false,
    message: 'the password must be changed first (POST /api/session/password)',
  },
  GW_ERR_DEMO_OFF: { status: 404, retryable: false, message: 'the demo (simulators) is not running' },
  GW_ERR_DEMO_UNREACHABLE: {
    status: 502,
    retryable: true,
    message: "the simulators' control did not answer",
  },
} as const satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;
export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as [ErrorCode, ...ErrorCode[]];

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code);
}

/**
 * A failure a route answers with: thrown from a handler or hook, turned into the answer by the one
 * error handler. `extra` adds fields beside code and message (e.g. `problems`).
 */
export class HttpError extends Error {
  readonly status: number;
  readonly retryable: boolean;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'HttpError';
    this.status = ERROR_CATALOGUE[code].status;
    this.retryable = ERROR_CATALOGUE[code].retryable;
  }
}

/** The answer's body for a code: `{"error": {code, message, retryable, ...extra}}`. */
export function errorBody(code: ErrorCode, message: string, extra?: Record<string, unknown>) {
  return { error: { code, message, retryable: ERROR_CATALOGUE[code].retryable, ...extra } };
}

/** The catalogue as a Markdown table, for the OpenAPI document. */
export function catalogueTable(): string {
  return [
    '| code | status | retryable | meaning |',
    '|---|---|---|---|',
    ...ERROR_CODES.map((c) => {
      const e: ErrorEntry = ERROR_CATALOGUE[c];
      return `| \`${c}\` | ${e.status} | ${e.retryable} | ${e.message} |`;
    }),
  ].join('\n');
}

/** Codes before the catalogue, for clients written against them (docs/api.md). */
export const RENAMED_CODES: Readonly<Record<string, ErrorCode>> = {
  bad_request: 'GW_ERR_BAD_REQUEST',
  unauthorized: 'GW_ERR_UNAUTHORIZED',
  forbidden: 'GW_ERR_FORBIDDEN',
  not_found: 'GW_ERR_NOT_FOUND',
  ambiguous: 'GW_ERR_CONFLICT',
  unavailable: 'GW_ERR_UNAVAILABLE',
  too_many_clients: 'GW_ERR_UNAVAILABLE',
  query_failed: 'GW_ERR_UPSTREAM',
  internal: 'GW_ERR_INTERNAL',
};
