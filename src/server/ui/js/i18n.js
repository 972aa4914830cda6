// Language: the one remembered in localStorage (the EN | DE switch), else the first of
// navigator.languages that the UI speaks, else English. Elements made with h(..., {t: key}) carry
// data-i18n / data-i18n-args / data-i18n-attr, so a switch re-translates the page in place (form
// contents and the log stay).
import { STRINGS } from './strings.js';

export const LANGS = ['en', 'de'];
const STORAGE_KEY = 'coldvault.lang';
let current = detect();

function detect() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(saved)) return saved;
  } catch {
    /* storage blocked: fall through */
  }
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language ?? 'en'];
  for (const tag of wanted) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (LANGS.includes(base)) return base;
  }
  return 'en';
}

export function lang() {
  return current;
}

export function t(key, args) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  if (!args) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (Object.hasOwn(args, name) ? String(args[name]) : m));
}

export function setLang(next) {
  if (!LANGS.includes(next)) return;
  current = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    /* not remembered, still switched */
  }
  applyI18n(document);
}

/** Re-translates every marked element below root (and <html lang>). */
export function applyI18n(root) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n, parseArgs(el.dataset.i18nArgs));
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const [attr, spec] of Object.entries(JSON.parse(el.dataset.i18nAttr))) {
      const [key, args] = Array.isArray(spec) ? spec : [spec];
      el.setAttribute(attr, t(key, args));
    }
  }
  document.dispatchEvent(new CustomEvent('coldvault:lang', { detail: current }));
}

function parseArgs(json) {
  return json ? JSON.parse(json) : undefined;
}
