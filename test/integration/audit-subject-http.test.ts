import { rmSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../gateway/src/gateway.js';
import { ADMIN_TOKEN, testConfig } from '../fixtures/gateway.js';

/**
 * Every person's action in the audit trail names the person and, for a single sign-on user, the
 * identity provider's subject: an alarm's ack, shelve and unshelve (its history), a shelf, a
 * maintenance window set and ended, an API token created and revoked, each over HTTP with the
 * session cookie of an SSO-bound account (made by the accounts store as the OIDC callback makes it).
 * The same actions with a bearer token record the name and no subject.
 */
const ENG_SUBJECT = 'https://idp.test/realms/site#0b6f-eng-4411';
const ADMIN_SUBJECT = 'https://idp.test/realms/site#77aa-adm-0001';
let gw: Gateway;
let engCookie: string;
let adminCookie: string;

async function call(
  method: string,
  path: string,
  auth: { cookie: string } | { token: string },
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { origin: gw.httpUrl! };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if ('cookie' in auth) headers.cookie = auth.cookie;
  else headers.authorization = `Bearer ${auth.token}`;
  const res = await fetch(`${gw.httpUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

function raise(device: string): string {
  const [e] = gw.alarms!.apply([
    {
      type: 'raise',
      severity: 'warning',
      value: true,
      ts: Date.now(),
      message: 'door open',
      deviceKey: `site-a/${device}`,
      site: 'site-a',
      device,
      kind: 'door',
      ruleId: 'door-open',
      ruleClass: 'routine',
      critical: false,
    },
  ]);
  return e!.alarm.id;
}

beforeAll(async () => {
  gw = new Gateway(testConfig({ influx: { enabled: false } }), pino({ level: 'silent' }));
  await gw.start();
  const eng = await gw.accounts!.ssoSession({
    username: 'erin',
    role: 'engineer',
    subject: ENG_SUBJECT,
    displayName: 'Erin Engineer',
  });
  const adm = await gw.accounts!.ssoSession({
    username: 'ada',
    role: 'admin',
    subject: ADMIN_SUBJECT,
    displayName: 'Ada Admin',
  });
  engCookie = `fgw_session=${eng.id}`;
  adminCookie = `fgw_session=${adm.id}`;
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  if (gw) rmSync(gw.cfg.dataDir, { recursive: true, force: true });
});

describe('the SSO subject in the audit trail', () => {
  it('an ack, a shelf and its end: in the alarm history and the shelf', async () => {
    const id = raise('door-1');
    const ack = await call('POST', `/api/alarms/${id}/ack`, { cookie: engCookie }, { note: 'on my way' });
    expect(ack.status).toBe(200);

    const shelf = await call(
      'POST',
      '/api/alarms/shelve',
      { cookie: engCookie },
      { device: 'door-1', durationMin: 60, reason: 'hinge replaced' },
    );
    expect(shelf.status).toBe(201);
    expect(shelf.body).toMatchObject({ user: 'erin', userSubject: ENG_SUBJECT, endedBySubject: null });
    const ended = await call('DELETE', `/api/alarms/shelves/${String(shelf.body.id)}`, { cookie: engCookie });
    expect(ended.status).toBe(200);
    expect(ended.body).toMatchObject({ endedBy: 'erin', endedBySubject: ENG_SUBJECT });

    const detail = await call('GET', `/api/alarms/${id}`, { cookie: engCookie });
    const history = detail.body.history as {
      type: string;
      user: string | null;
      userSubject: string | null;
    }[];
    expect(history.map((e) => [e.type, e.user, e.userSubject])).toEqual([
      ['raise', null, null],
      ['ack', 'erin', ENG_SUBJECT],
      ['shelve', 'erin', ENG_SUBJECT],
      ['unshelve', 'erin', ENG_SUBJECT],
    ]);
    // Read back from the store (the list of every shelf), not only from the answer above.
    const all = await call('GET', '/api/alarms/shelves?all=true', { cookie: engCookie });
    expect((all.body.shelves as Record<string, unknown>[]).find((s) => s.id === shelf.body.id)).toMatchObject(
      { userSubject: ENG_SUBJECT, endedBySubject: ENG_SUBJECT },
    );
  });

  it('a bearer token records the name and no subject', async () => {
    const id = raise('door-2');
    expect((await call('POST', `/api/alarms/${id}/ack`, { token: ADMIN_TOKEN }, {})).status).toBe(200);
    const history = (await call('GET', `/api/alarms/${id}`, { token: ADMIN_TOKEN })).body.history as {
      type: string;
      user: string | null;
      userSubject: string | null;
    }[];
    expect(history.at(-1)).toMatchObject({ type: 'ack', user: 'admin', userSubject: null });
  });

  it('a maintenance window set and ended', async () => {
    const now = Date.now();
    const w = await call(
      'POST',
      '/api/windows',
      { cookie: engCookie },
      {
        site: 'site-a',
        schedule: {
          type: 'once',
          from: new Date(now).toISOString(),
          to: new Date(now + 3_600_000).toISOString(),
        },
        reason: 'pump overhaul',
      },
    );
    expect(w.status).toBe(201);
    expect(w.body).toMatchObject({ createdBy: 'erin', createdBySubject: ENG_SUBJECT, endedBySubject: null });
    const end = await call('POST', `/api/windows/${String(w.body.id)}/end`, { cookie: engCookie });
    expect(end.status).toBe(200);
    expect(end.body).toMatchObject({ endedBy: 'erin', endedBySubject: ENG_SUBJECT });
    const all = await call('GET', '/api/windows?all=true', { cookie: engCookie });
    expect((all.body.windows as Record<string, unknown>[]).find((x) => x.id === w.body.id)).toMatchObject({
      createdBySubject: ENG_SUBJECT,
      endedBySubject: ENG_SUBJECT,
    });
  });

  it('an API token created and revoked', async () => {
    const made = await call(
      'POST',
      '/api/admin/tokens',
      { cookie: adminCookie },
      {
        name: 'bms-link',
        role: 'viewer',
      },
    );
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ createdBy: 'ada', createdBySubject: ADMIN_SUBJECT, revokedBy: null });
    const revoked = await call('POST', '/api/admin/tokens/bms-link/revoke', { cookie: adminCookie });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ revokedBy: 'ada', revokedBySubject: ADMIN_SUBJECT });
  });
});
