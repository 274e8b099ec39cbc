import { z } from 'zod';
import { roleEnum } from './common.js';
import { named } from './registry.js';

/** A username: the key other modules (contacts, on-call) refer to a person by. */
export const username = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.@-]{0,63}$/, 'must be lower case letters, digits and _.@- (at most 64)');
const password = z.string().min(1).max(1024);

/** Who is signed in (cookie) or whose token this is (bearer). */
export const sessionSchema = named(
  z.object({
    name: z.string(),
    role: roleEnum,
    /** How: `token` (bearer, or a session opened with a token), `password`, `link` (the demo's), `oidc`. */
    via: z.enum(['token', 'password', 'link', 'oidc']).optional(),
    /** A session whose password must be changed before anything else (POST /api/session/password). */
    mustChangePassword: z.boolean().optional(),
    displayName: z.string().optional(),
    language: z.enum(['zh', 'en']).optional(),
    /** When the session ends at the latest (absolute timeout), RFC 3339. */
    expiresAt: z.string().optional(),
  }),
  'Session',
);

/** Sign in with a username and password, or exchange an API token for a session (the dashboard's token option). */
export const signInBody = z.union([
  z.strictObject({ username: z.string().min(1).max(200), password }),
  z.strictObject({ token: z.string().min(1).max(500) }),
]);

export const changePasswordBody = z.strictObject({ currentPassword: password, newPassword: password });

export const linkQuery = z.strictObject({ code: z.string().min(1).max(200) });

export const userSchema = named(
  z.object({
    username,
    displayName: z.string(),
    language: z.enum(['zh', 'en']),
    role: roleEnum,
    email: z.string().nullable(),
    phone: z.string().nullable(),
    disabled: z.boolean(),
    mustChangePassword: z.boolean(),
    createdAt: z.string(),
    createdBy: z.string(),
    disabledAt: z.string().nullable(),
    disabledBy: z.string().nullable(),
  }),
  'User',
);

export const createUserBody = z.strictObject({
  username,
  displayName: z.string().min(1).max(200),
  language: z.enum(['zh', 'en']).default('en'),
  role: roleEnum,
  email: z.email().max(320).optional(),
  phone: z
    .string()
    .regex(/^\+?[0-9 ()-]{3,32}$/, 'digits, spaces, ()- and a leading +')
    .optional(),
  /** Absent: a temporary password is made and returned in the answer, once. */
  password: password.optional(),
});

export const resetPasswordBody = z.strictObject({ password: password.optional() });

/** A user with the password just set, shown this once (new account or reset). */
export const userWithPasswordSchema = z.object({ user: userSchema, temporaryPassword: z.string() });

export type Session = z.infer<typeof sessionSchema>;
export type UserJson = z.infer<typeof userSchema>;
