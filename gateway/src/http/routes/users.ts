import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AccountService } from '../../accounts/service.js';
import type { User } from '../../accounts/types.js';
import {
  createUserBody,
  resetPasswordBody,
  userSchema,
  userWithPasswordSchema,
  username,
} from '../schemas/accounts.js';
import { authErrors, errorSchema } from '../schemas/common.js';

export interface UserRouteDeps {
  accounts: AccountService;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function toJson(u: User) {
  return { ...u, createdAt: iso(u.createdAt)!, disabledAt: iso(u.disabledAt) };
}

const params = z.object({ username });

/**
 * Personal accounts (admin): list, create (a temporary password shown once unless one is given),
 * disable or enable (the account and its history stay; sessions end at once), reset a password
 * (a temporary one, changed at the next sign-in).
 */
export const userRoutes: FastifyPluginAsyncZod<UserRouteDeps> = async (app, deps) => {
  const { accounts } = deps;

  app.get(
    '/api/admin/users',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Every account (never a password or its hash)',
        response: { 200: z.object({ users: z.array(userSchema) }), ...authErrors },
      },
    },
    async () => ({ users: (await accounts.list()).map(toJson) }),
  );

  app.post(
    '/api/admin/users',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Create an account; it must choose its own password at first sign-in',
        body: createUserBody,
        response: { 201: userWithPasswordSchema, 400: errorSchema, 409: errorSchema, ...authErrors },
      },
    },
    async (req, reply) => {
      const { user, password } = await accounts.create(req.body, req.principal!.name);
      return reply.code(201).send({ user: toJson(user), temporaryPassword: password });
    },
  );

  for (const [action, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const)
    app.post(
      `/api/admin/users/:username/${action}`,
      {
        config: { role: 'admin' },
        schema: {
          summary: disabled
            ? 'Disable an account: no sign-in, its sessions end now; the account and its history stay'
            : 'Enable a disabled account again',
          params,
          response: { 200: userSchema, 404: errorSchema, ...authErrors },
        },
      },
      async (req) => toJson(await accounts.setDisabled(req.params.username, disabled, req.principal!.name)),
    );

  app.post(
    '/api/admin/users/:username/reset-password',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Set a temporary password (given or made); it must be changed at the next sign-in',
        params,
        body: resetPasswordBody,
        response: { 200: userWithPasswordSchema, 400: errorSchema, 404: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const { user, password } = await accounts.resetPassword(
        req.params.username,
        req.principal!.name,
        req.body.password,
      );
      return { user: toJson(user), temporaryPassword: password };
    },
  );
};
