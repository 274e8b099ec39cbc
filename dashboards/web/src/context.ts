import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import type { Api, Role, Session } from './api';
import { translate, type Lang } from './i18n';
import type { Store } from './store';

export interface AppCtx {
  api: Api;
  store: Store;
  session: Session;
  lang: Lang;
  t: (key: string, vars?: Record<string, string | number>) => string;
}

export const Ctx = createContext<AppCtx | null>(null);

export function useApp(): AppCtx {
  const c = useContext(Ctx);
  if (!c) throw new Error('useApp outside the signed-in app');
  return c;
}

export const tFor =
  (lang: Lang) =>
  (key: string, vars?: Record<string, string | number>): string =>
    translate(lang, key, vars);

/** Re-renders the calling view on every store redraw (at most every 250 ms). */
export function useStoreVersion(store: Store): number {
  const [v, setV] = useState(store.version);
  useEffect(() => store.subscribe(() => setV(store.version)), [store]);
  return v;
}

const RANK: Record<Role, number> = { viewer: 0, engineer: 1, admin: 2 };
/** Whether the signed-in role may act (the gateway checks again; this only hides buttons). */
export const can = (s: Session, role: Role): boolean => RANK[s.role] >= RANK[role];
