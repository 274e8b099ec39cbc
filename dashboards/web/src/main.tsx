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

const TOKEN_KEY = 'fgw.token';

/** `?token=` in the address (the demo prints such a link) signs in once, then leaves the address. */
function takeTokenFromUrl(): void {
  const u = new URL(location.href);
  const tok = u.searchParams.get('token');
  if (!tok) return;
  localStorage.setItem(TOKEN_KEY, tok);
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
  onSession: (api: Api, s: Session) => void;
  error?: string;
}) {
  const t = tFor(props.lang);
  const [token, setToken] = useState('');
  const [err, setErr] = useState(props.error ?? '');
  const submit = (e: Event) => {
    e.preventDefault();
    const api = new Api(token.trim());
    api.session().then(
      (s) => {
        localStorage.setItem(TOKEN_KEY, api.token);
        props.onSession(api, s);
      },
      (x: ApiError) => setErr(x.status === 401 ? `${t('tokenRefused')}: ${x.message}` : x.message),
    );
  };
  return (
    <main class="signin">
      <form onSubmit={submit} data-testid="signin">
        <h1>{t('title')}</h1>
        <p class="hint">{t('signInHint')}</p>
        <label>
          {t('token')}
          <input
            name="token"
            type="password"
            autoComplete="current-password"
            value={token}
            onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
        <button type="submit">{t('signIn')}</button>
        {err && (
          <p class="error" role="alert" data-testid="signin-error">
            {err}
          </p>
        )}
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
  useEffect(() => {
    const saved = localStorage.getItem(TOKEN_KEY);
    if (!saved) return setChecking(false);
    const api = new Api(saved);
    api.session().then(
      (s) => {
        setAuth({ api, session: s });
        setChecking(false);
      },
      (e: ApiError) => {
        if (e.status === 401) localStorage.removeItem(TOKEN_KEY);
        setError(e.message);
        setChecking(false);
      },
    );
    return undefined;
  }, []);
  const store = useMemo(() => (auth ? new Store(auth.api) : null), [auth]);
  useEffect(() => {
    if (!store) return undefined;
    store.start().catch((e: Error) => setError(e.message));
    return () => store.stop();
  }, [store]);
  if (checking) return null;
  if (!auth || !store)
    return (
      <SignIn
        lang={lang}
        setLang={setLang}
        error={error}
        onSession={(api, session) => setAuth({ api, session })}
      />
    );
  const ctx: AppCtx = { api: auth.api, store, session: auth.session, lang, t: tFor(lang) };
  return (
    <Ctx.Provider value={ctx}>
      <Shell
        setLang={setLang}
        signOut={() => {
          localStorage.removeItem(TOKEN_KEY);
          setAuth(null);
          setError('');
        }}
      />
    </Ctx.Provider>
  );
}

takeTokenFromUrl();
render(<App />, document.getElementById('app')!);
