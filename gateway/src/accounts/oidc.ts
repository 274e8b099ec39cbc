import { randomBytes } from 'node:crypto';
import type * as OpenId from 'openid-client';
import type { Logger } from '../core/log.js';
import type { AccountService } from './service.js';
import { AccountError, type AccountRole } from './types.js';

export interface OidcSettings {
  issuer: string;
  clientId: string;
  clientSecret?: string;
  publicUrl: string;
  scopes: string;
  roleClaim: string;
  roles: Record<string, AccountRole>;
  usernameClaim: string;
  label: string;
}

const RANK: Record<AccountRole, number> = { viewer: 0, engineer: 1, admin: 2 };
/** A sign-in started at the provider must come back within this time. */
const FLOW_TTL_MS = 10 * 60_000;
export const OIDC_CALLBACK = '/api/session/oidc/callback';

/** The role a claim's value(s) map to: the strongest match, or undefined when none maps. */
export function roleFromClaim(value: unknown, map: Record<string, AccountRole>): AccountRole | undefined {
  const values = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  let best: AccountRole | undefined;
  for (const v of values) {
    // Own keys only: a claim value such as `constructor` must not find Object's prototype.
    const r = typeof v === 'string' && Object.hasOwn(map, v) ? map[v] : undefined;
    if (r !== undefined && (best === undefined || RANK[r] > RANK[best])) best = r;
  }
  return best;
}

/** A loopback issuer may speak plain HTTP (tests, a provider on the same host); any other needs HTTPS. */
function loopback(url: string): boolean {
  const h = new URL(url).hostname;
  return h === '127.0.0.1' || h === 'localhost' || h === '[::1]';
}

/**
 * OpenID Connect sign-in through `openid-client` (ADR 0133): the authorization code flow with PKCE,
 * state and nonce. The person's role comes from a configured claim (groups, say) mapped to the
 * gateway's roles; a person without a mapped value is refused with a message that says so. The
 * account is created (or its role updated) at each sign-in and bound to the provider's subject.
 */
// The library is loaded on the first sign-in, not at start: a gateway without single sign-on
// (the default) does not carry it on its heap, which the ingest path's garbage collector feels.
let openId: typeof OpenId | undefined;
async function openIdClient(): Promise<typeof OpenId> {
  return (openId ??= await import('openid-client'));
}

export class OidcSignIn {
  private config?: OpenId.Configuration;
  private readonly flows = new Map<
    string,
    { verifier: string; state: string; nonce: string; until: number }
  >();

  constructor(
    readonly settings: OidcSettings,
    private readonly accounts: AccountService,
    private readonly log: Logger,
  ) {}

  private async configuration(): Promise<OpenId.Configuration> {
    if (this.config) return this.config;
    const client = await openIdClient();
    const s = this.settings;
    this.config = await client.discovery(
      new URL(s.issuer),
      s.clientId,
      s.clientSecret,
      s.clientSecret === undefined ? client.None() : undefined,
      loopback(s.issuer) ? { execute: [client.allowInsecureRequests] } : undefined,
    );
    return this.config;
  }

  get redirectUri(): string {
    return new URL(OIDC_CALLBACK, this.settings.publicUrl).toString();
  }

  /** Starts a sign-in: the flow's id (for a cookie) and the provider's address to send the browser to. */
  async start(): Promise<{ flow: string; url: string }> {
    const config = await this.configuration();
    const client = await openIdClient();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const flow = randomBytes(24).toString('base64url');
    const now = Date.now();
    for (const [k, f] of this.flows) if (f.until <= now) this.flows.delete(k);
    this.flows.set(flow, { verifier, state, nonce, until: now + FLOW_TTL_MS });
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: this.settings.scopes,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { flow, url: url.toString() };
  }

  /** The provider sent the browser back: the code is exchanged, the claims checked, a session opened. */
  async finish(flowId: string | undefined, callbackUrl: string): Promise<{ id: string; expiresAt: number }> {
    const flow = flowId === undefined ? undefined : this.flows.get(flowId);
    if (flowId !== undefined) this.flows.delete(flowId);
    if (!flow || flow.until <= Date.now())
      throw new AccountError(
        'GW_ERR_SIGN_IN_FAILED',
        'single sign-on: no sign-in in progress (expired): start again',
      );
    const config = await this.configuration();
    const client = await openIdClient();
    const s = this.settings;
    let claims: Record<string, unknown>;
    let iss: string;
    let sub: string;
    try {
      const tokens = await client.authorizationCodeGrant(config, new URL(callbackUrl), {
        pkceCodeVerifier: flow.verifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      });
      const id = tokens.claims()!;
      iss = id.iss;
      sub = id.sub;
      claims = { ...id };
      // Groups are often only in the userinfo answer, not in the ID token.
      if (claims[s.roleClaim] === undefined || claims[s.usernameClaim] === undefined)
        claims = { ...(await client.fetchUserInfo(config, tokens.access_token, sub)), ...claims };
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'single sign-on refused by the token exchange');
      throw new AccountError('GW_ERR_SIGN_IN_FAILED', `single sign-on failed: ${(err as Error).message}`);
    }
    const subject = `${iss}#${sub}`;
    const username = String(claims[s.usernameClaim] ?? sub).toLowerCase();
    const role = roleFromClaim(claims[s.roleClaim], s.roles);
    if (role === undefined) {
      this.log.warn({ subject, username, claim: s.roleClaim }, 'single sign-on refused: no role claim');
      throw new AccountError(
        'GW_ERR_SSO_NO_ROLE',
        `your account at the identity provider has no ${s.roleClaim} value that gives a role on this gateway ` +
          `(expected one of: ${Object.keys(s.roles).join(', ')}): ask your administrator`,
      );
    }
    return this.accounts.ssoSession({
      username,
      role,
      subject,
      displayName: String(claims.name ?? username),
    });
  }
}
