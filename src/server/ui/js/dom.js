// A tiny DOM builder and formatting helpers. h('button', {t: 'jobs.edit', on: {click}}, ...children):
// `t` sets the text from the dictionary (re-translated on a language switch), `tAttr` does the same
// for attributes ({'aria-label': ['jobs.editJob', {id}]}); value / checked / disabled / hidden /
// selected / readOnly are set as properties; other attributes as given (true -> present).
import { t } from './i18n.js';

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'readOnly', 'open']);

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 't') {
      const [k, args] = Array.isArray(value) ? value : [value];
      el.dataset.i18n = k;
      if (args) el.dataset.i18nArgs = JSON.stringify(args);
      el.textContent = t(k, args);
    } else if (key === 'tAttr') {
      el.dataset.i18nAttr = JSON.stringify(value);
      for (const [attr, spec] of Object.entries(value)) {
        const [k, args] = Array.isArray(spec) ? spec : [spec];
        el.setAttribute(attr, t(k, args));
      }
    } else if (key === 'on') {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (PROPS.has(key)) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A text marked for translation, as a span (for mixing into other text). */
export function tx(key, args) {
  return h('span', { t: args ? [key, args] : key });
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export function formatBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

const pad = (n) => String(n).padStart(2, '0');

/** YYYY-MM-DD in local time (the seed's `Version: 1 (2014-03-06)`). */
export function formatDay(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso ?? '');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function formatTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${formatDay(iso)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A comma / space separated list -> trimmed non-empty items. */
export function splitList(text) {
  return String(text ?? '')
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A checkmark cell content readable by screen readers. */
export function check(on) {
  return on
    ? [h('span', { class: 'check', 'aria-hidden': 'true' }, '✓'), h('span', { class: 'sr-only', t: 'common.yes' })]
    : [h('span', { class: 'nocheck', 'aria-hidden': 'true' }, '·'), h('span', { class: 'sr-only', t: 'common.no' })];
}
