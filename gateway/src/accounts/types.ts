/** The roles of the gateway (CONTRACT.md): viewer reads, engineer acts, admin administers. */
export type AccountRole = 'viewer' | 'engineer' | 'admin';
export type Language = 'zh' | 'en';

/** A person who signs in. `username` is the key other modules (contacts, on-call) refer to. */
export interface User {
  username: string;
  displayName: string;
  language: Language;
  role: AccountRole;
  email: string | null;
  phone: string | null;
  disabled: boolean;
  /** Set by an admin's reset (and for a new account): the next sign-in must choose a new password. */
  mustChangePassword: boolean;
  createdAt: number;
  createdBy: string;
  disabledAt: number | null;
  disabledBy: string | null;
}

/** How a session was opened: a password, an API token exchanged in the dashboard, the demo's one-time link. */
export type SessionVia = 'password' | 'token' | 'link' | 'oidc';

/** Who a session belongs to, as the HTTP layer authorises requests with it. */
export interface SessionInfo {
  username: string;
  role: AccountRole;
  via: SessionVia;
  /** SSO: the identity provider's subject (`iss` + `sub`), recorded in the audit trail. */
  subject: string | null;
  createdAt: number;
  expiresAt: number;
  mustChangePassword: boolean;
}

export type AccountErrorCode =
  | 'GW_ERR_USER_EXISTS'
  | 'GW_ERR_USER_NOT_FOUND'
  | 'GW_ERR_PASSWORD_WEAK'
  | 'GW_ERR_SIGN_IN_FAILED'
  | 'GW_ERR_SIGN_IN_LOCKED'
  | 'GW_ERR_SSO_NO_ROLE';

/** A refusal of the accounts module, carrying its catalogue code to the HTTP error handler. */
export class AccountError extends Error {
  constructor(
    readonly code: AccountErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AccountError';
  }
}
