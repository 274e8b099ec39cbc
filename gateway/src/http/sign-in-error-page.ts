import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Language } from '../accounts/types.js';
import { ERROR_CATALOGUE, type ErrorCode, isErrorCode } from './errors.js';

/**
 * A sign-in that a browser follows (a one-time link, the identity provider's redirect back) and that
 * fails must not leave a person looking at raw JSON: a small page in their language says what went
 * wrong and links back to the sign-in. API clients still get the catalogue's JSON (ADR 0134). The
 * page has no script and no style, so the Content Security Policy needs nothing for it.
 */

/** One `Accept`-style list: each value with its q (default 1), best first, ties in header order. */
function ranked(header: string | undefined): { value: string; q: number }[] {
  if (!header) return [];
  return header
    .split(',')
    .map((part, i) => {
      const [value = '', ...params] = part.trim().split(';');
      const qp = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      const q = qp === undefined ? 1 : Number(qp.slice(2));
      return { value: value.trim().toLowerCase(), q: Number.isFinite(q) ? q : 0, i };
    })
    .filter((x) => x.value !== '' && x.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
}

/** A browser's navigation (it names text/html, ahead of or level with JSON); `*\/*` alone is an API client. */
export function wantsHtml(accept: string | undefined): boolean {
  const list = ranked(accept);
  const html = list.find((x) => x.value === 'text/html');
  if (!html) return false;
  const json = list.find((x) => x.value === 'application/json');
  return !json || html.q >= json.q;
}

/** The first of zh / en in the person's Accept-Language (`zh-CN`, `zh-Hans` count as zh); en otherwise. */
export function pageLanguage(acceptLanguage: string | undefined): Language {
  for (const { value } of ranked(acceptLanguage)) {
    const primary = value.split('-')[0];
    if (primary === 'zh' || primary === 'en') return primary;
  }
  return 'en';
}

export type SignInFailure = 'link' | 'sso';

const TEXT: Record<Language, Record<SignInFailure | 'title' | 'back', string>> = {
  en: {
    title: 'Sign-in failed',
    link: 'This sign-in link was used already or has expired. Sign in with your username and password.',
    sso: 'Single sign-on did not let you in.',
    back: 'Back to the sign-in',
  },
  zh: {
    title: '登录失败',
    link: '此登录链接已被使用或已过期。请使用用户名和密码登录。',
    sso: '单点登录未能让您登录。',
    back: '返回登录页面',
  },
};

function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

/** The page: what happened in the person's language, the gateway's own reason and code, a link to `/`. */
export function signInErrorPage(
  lang: Language,
  what: SignInFailure,
  code: ErrorCode,
  reason: string,
): string {
  const t = TEXT[lang];
  return `<!doctype html>
<html lang="${lang === 'zh' ? 'zh-CN' : 'en'}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${t.title}</title></head>
<body>
<main>
<h1>${t.title}</h1>
<p>${t[what]}</p>
<p><small>${escapeHtml(reason)} (${code})</small></p>
<p><a href="/">${t.back}</a></p>
</main>
</body>
</html>
`;
}

/**
 * Runs a browser-followed sign-in step; a refusal with a catalogue code goes to a browser as the page
 * (same status: `answered`, the route returns the reply), to anyone else through the error handler as
 * JSON. Other failures are not touched.
 */
export async function withSignInErrorPage<T>(
  req: FastifyRequest,
  reply: FastifyReply,
  what: SignInFailure,
  step: () => Promise<T>,
): Promise<{ value: T } | { answered: FastifyReply }> {
  try {
    return { value: await step() };
  } catch (err) {
    // HttpError and the accounts' AccountError both carry a catalogue code.
    const code = (err as { code?: unknown }).code;
    if (!wantsHtml(req.headers.accept) || typeof code !== 'string' || !isErrorCode(code)) throw err;
    req.log.info({ code }, 'sign-in refused: answered with the error page');
    const answered = reply
      .code(ERROR_CATALOGUE[code].status)
      .type('text/html; charset=utf-8')
      .header('vary', 'Accept, Accept-Language')
      .send(
        signInErrorPage(pageLanguage(req.headers['accept-language']), what, code, (err as Error).message),
      );
    return { answered };
  }
}
