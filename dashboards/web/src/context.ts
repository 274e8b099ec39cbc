import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
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

/**
 * What `select` reads from the store, re-rendering the calling view after a store redraw only
 * when that changed: Preact skips a state update to an equal value, so a view that selects one
 * list's revision stays still while readings stream in.
 */
export function useStoreValue<T>(store: Store, select: (s: Store) => T): T {
  const value = select(store);
  const [, setSeen] = useState(value);
  // The newest selector (it may read a prop such as the device key) without subscribing again.
  const latest = useRef(select);
  latest.current = select;
  useEffect(() => {
    const update = () => setSeen(latest.current(store));
    // A redraw between the first render and this subscription is not missed.
    update();
    return store.subscribe(update);
  }, [store]);
  return value;
}

/** Re-renders the calling view on every store redraw (at most every 250 ms). */
export const useStoreVersion = (store: Store): number => useStoreValue(store, (s) => s.version);

const RANK: Record<Role, number> = { viewer: 0, engineer: 1, admin: 2 };
/** Whether the signed-in role may act (the gateway checks again; this only hides buttons). */
export const can = (s: Session, role: Role): boolean => RANK[s.role] >= RANK[role];
