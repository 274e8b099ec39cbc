import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Api, ApiError, type Session } from './api';
import { Ctx, tFor, useApp, useStoreVersion, type AppCtx } from './context';
import type { Lang } from './i18n';
import { detectLang, saveLang } from './lang';
import { Store } from './store';
import { AlarmsView } from './views/alarms';
import { DeviceView } from './views/device';
import { FleetView } from './views/fleet';
import { Overview } from './views/overview';
import { ReportView } from './views/report';
import { WindowsView } from './views/windows';
import { WorkOrdersView } from './views/workorders';
import './style.css';

/**
 * An old link with `?token=` (before sessions): the token is dropped from the address and history
 * at once, never used or stored. Sessions are cookies now; the demo prints a one-time link instead.
 */
function dropTokenFromUrl(): void {
  const u = new URL(location.href);
  if (!u.searchParams.has('token')) return;
  u.searchParams.delete('token');
  history.replaceState(null, '', u.pathname + u.search + (u.hash || '#/overview'));
}

function useHash(): string {
  const [h, setH] = useState(location.hash || '#/overview');
  useEffect(() => {
    const on = () => setH(location.hash || '#/overview');
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return h;
}

function SignIn(props: {
  lang: Lang;
  setLang: (l: Lang) => void;
  onSession: (s: Session) => void;
  error?: string;
}) {
  const t = tFor(props.lang);
  const [mode, setMode] = useState<'password' | 'token'>('password');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [err, setErr] = useState(props.error ?? '');
  const [sso, setSso] = useState<{ label: string; start: string } | null>(null);
  useEffect(() => {
    new Api().providers().then(
      (p) => setSso(p.sso),
      () => undefined,
    );
  }, []);
  const submit = (e: Event) => {
    e.preventDefault();
    const api = new Api();
    const attempt =
      mode === 'token' ? api.signInWithToken(token.trim()) : api.signIn(username.trim(), password);
    attempt.then(
      (s) => {
        // Nothing is stored: the session is the HttpOnly cookie the answer set.
        setPassword('');
        setToken('');
        props.onSession(s);
      },
      (x: ApiError) =>
        setErr(x.status === 401 && mode === 'token' ? `${t('tokenRefused')}: ${x.message}` : x.message),
    );
  };
  const onInput = (set: (v: string) => void) => (e: Event) =>
    set((e.currentTarget as HTMLInputElement).value);
  return (
    <main class="signin">
      <form onSubmit={submit} data-testid="signin" data-mode={mode}>
        <h1>{t('title')}</h1>
        <p class="hint">{mode === 'token' ? t('tokenHint') : t('signInHint')}</p>
        {mode === 'password' ? (
          <>
            <label>
              {t('username')}
              <input
                name="username"
                type="text"
                autoComplete="username"
                value={username}
                onInput={onInput(setUsername)}
              />
            </label>
            <label>
              {t('password')}
              <input
                name="password"
                type="password"
                autoComplete="current-password"
                value={password}
                onInput={onInput(setPassword)}
              />
            </label>
          </>
        ) : (
          <label>
            {t('token')}
            <input
              name="token"
              type="password"
              autoComplete="off"
              value={token}
              onInput={onInput(setToken)}
            />
          </label>
        )}
        <button type="submit">{t('signIn')}</button>
        {sso && (
          // A plain link: the browser goes to the identity provider and comes back with a session cookie.
          <a class="button secondary" href={sso.start} data-testid="sso">
            {sso.label}
          </a>
        )}
        {err && (
          <p class="error" role="alert" data-testid="signin-error">
            {err}
          </p>
        )}
        <button
          type="button"
          class="link"
          data-testid="signin-mode"
          onClick={() => {
            setErr('');
            setMode(mode === 'password' ? 'token' : 'password');
          }}
        >
          {mode === 'password' ? t('useToken') : t('usePassword')}
        </button>
        <button
          type="button"
          class="link"
          onClick={() => props.setLang(props.lang === 'en' ? 'zh-CN' : 'en')}
        >
          {t('language')}
        </button>
      </form>
    </main>
  );
}

/** A session whose password was set by an admin (new account, reset): a new one first. */
function ChangePassword(props: { lang: Lang; onDone: () => void; signOut: () => void }) {
  const t = tFor(props.lang);
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [err, setErr] = useState('');
  const submit = (e: Event) => {
    e.preventDefault();
    if (next !== again) return setErr(t('passwordsDiffer'));
    new Api().changePassword(current, next).then(props.onDone, (x: ApiError) => setErr(x.message));
  };
  const input = (name: string, label: string, value: string, set: (v: string) => void, auto: string) => (
    <label>
      {label}
      <input
        name={name}
        type="password"
        autoComplete={auto}
        value={value}
        onInput={(e) => set((e.currentTarget as HTMLInputElement).value)}
      />
    </label>
  );
  return (
    <main class="signin">
      <form onSubmit={submit} data-testid="change-password">
        <h1>{t('changePassword')}</h1>
        <p class="hint">{t('mustChange')}</p>
        {input('current', t('currentPassword'), current, setCurrent, 'current-password')}
        {input('new', t('newPassword'), next, setNext, 'new-password')}
        {input('again', t('repeatPassword'), again, setAgain, 'new-password')}
        <button type="submit">{t('changePassword')}</button>
        {err && (
          <p class="error" role="alert">
            {err}
          </p>
        )}
        <button type="button" class="link" onClick={props.signOut}>
          {t('signOut')}
        </button>
      </form>
    </main>
  );
}

function Banner() {
  const { store, t } = useApp();
  useStoreVersion(store);
  const [, setTick] = useState(0);
  useEffect(() => {
    const id = window.setInterval(() => setTick((x) => x + 1), 1000);
    return () => window.clearInterval(id);
  }, []);
  const c = store.conn;
  const text =
    c === 'live'
      ? t('live')
      : c === 'stale'
        ? t('stale', { s: Math.round((Date.now() - store.lastEventAt) / 1000) })
        : t(c);
  return (
    <div class={`banner conn-${c}`} data-testid="conn" data-conn={c} role="status">
      <span class="dot" /> {text}
    </div>
  );
}

function Shell(props: { setLang: (l: Lang) => void; signOut: () => void }) {
  const ctx = useApp();
  const { t, session, lang } = ctx;
  const hash = useHash();
  const [, path, arg] = /^#\/([^/]*)\/?(.*)$/.exec(hash) ?? [];
  let view;
  switch (path) {
    case 'device':
      view = <DeviceView id={decodeURIComponent(arg ?? '')} key={arg} />;
      break;
    case 'alarms':
      view = <AlarmsView />;
      break;
    case 'workorders':
      view = <WorkOrdersView id={arg ? decodeURIComponent(arg) : undefined} />;
      break;
    case 'report':
      view = <ReportView />;
      break;
    case 'windows':
      view = <WindowsView />;
      break;
    case 'fleet':
      view = <FleetView />;
      break;
    default:
      view = <Overview />;
  }
  const nav = (p: string, label: string) => (
    <a href={`#/${p}`} class={path === p || (!path && p === 'overview') ? 'active' : ''} data-nav={p}>
      {label}
    </a>
  );
  return (
    <div class="shell">
      <header class="top">
        <span class="brand">{t('title')}</span>
        <nav>
          {nav('overview', t('overview'))}
          {nav('alarms', t('alarms'))}
          {nav('workorders', t('workorders'))}
          {nav('report', t('report'))}
          {nav('windows', t('windows'))}
          {nav('fleet', t('fleet'))}
        </nav>
        <Banner />
        <span class="who" data-testid="who" data-role={session.role}>
          {t('signedInAs', { name: session.name, role: t(`role_${session.role}`) })}
        </span>
        <button class="link" data-testid="lang" onClick={() => props.setLang(lang === 'en' ? 'zh-CN' : 'en')}>
          {t('language')}
        </button>
        <button class="link" data-testid="signout" onClick={props.signOut}>
          {t('signOut')}
        </button>
      </header>
      <main class="content">{view}</main>
    </div>
  );
}

function App() {
  const [lang, setLangState] = useState<Lang>(detectLang());
  const [auth, setAuth] = useState<{ api: Api; session: Session } | null>(null);
  const [checking, setChecking] = useState(true);
  const [error, setError] = useState('');
  const setLang = (l: Lang) => {
    saveLang(l);
    setLangState(l);
  };
  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);
  // Already signed in (the session cookie), or the sign-in form.
  useEffect(() => {
    const api = new Api();
    api.session().then(
      (s) => {
        setAuth({ api, session: s });
        setChecking(false);
      },
      (e: ApiError) => {
        if (e.status !== 401) setError(e.message);
        setChecking(false);
      },
    );
  }, []);
  const ready = auth !== null && auth.session.mustChangePassword !== true;
  const store = useMemo(() => (auth && ready ? new Store(auth.api) : null), [auth, ready]);
  useEffect(() => {
    if (!store) return undefined;
    store.start().catch((e: Error) => setError(e.message));
    return () => store.stop();
  }, [store]);
  const signOut = () => {
    // Ended on the server; the cookie is cleared by the answer.
    new Api()
      .signOut()
      .catch(() => undefined)
      .finally(() => {
        setAuth(null);
        setError('');
      });
  };
  if (checking) return null;
  if (auth && !ready)
    return (
      <ChangePassword
        lang={lang}
        signOut={signOut}
        onDone={() => setAuth({ api: auth.api, session: { ...auth.session, mustChangePassword: false } })}
      />
    );
  if (!auth || !store)
    return (
      <SignIn
        lang={lang}
        setLang={setLang}
        error={error}
        onSession={(session) => setAuth({ api: new Api(), session })}
      />
    );
  const ctx: AppCtx = { api: auth.api, store, session: auth.session, lang, t: tFor(lang) };
  return (
    <Ctx.Provider value={ctx}>
      <Shell setLang={setLang} signOut={signOut} />
    </Ctx.Provider>
  );
}

dropTokenFromUrl();
render(<App />, document.getElementById('app')!);
