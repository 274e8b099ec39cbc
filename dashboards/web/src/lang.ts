// The language follows the browser (navigator.languages) until someone picks one with the
// switch, which is remembered.
import type { Lang } from './i18n';

const STORAGE_KEY = 'fgw.lang';

export function detectLang(): Lang {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved === 'en' || saved === 'zh-CN') return saved;
  for (const l of navigator.languages ?? [navigator.language]) {
    if (l.toLowerCase().startsWith('zh')) return 'zh-CN';
    if (l.toLowerCase().startsWith('en')) return 'en';
  }
  return 'en';
}

export function saveLang(l: Lang): void {
  localStorage.setItem(STORAGE_KEY, l);
}
