// The shell: header (navigation, EN | DE, log out), a hash router (#/overview: the landing page, #/jobs, #/jobs/new,
// #/jobs/<id>/edit, #/restore, #/tasks, #/tasks/<id>, #/guests, #/login) and the session: the app
// asks GET /api/v1/status at start; a 401 anywhere shows the login and comes back afterwards.
import { get, onUnauthorized, post } from './api.js';
import { clear, h } from './dom.js';
import { applyI18n, lang, LANGS, setLang, t } from './i18n.js';
import { guestsView } from './views/guests.js';
import { jobFormView } from './views/job-form.js';
import { jobsView } from './views/jobs.js';
import { loginView } from './views/login.js';
import { overviewView } from './views/overview.js';
import { restoreView } from './views/restore.js';
import { taskLogView } from './views/task-log.js';
import { tasksView } from './views/tasks.js';

const ROUTES = [
  { path: /^\/login$/, view: loginView, public: true, title: 'login.title' },
  { path: /^\/overview$/, view: overviewView, nav: 'overview', title: 'overview.title' },
  { path: /^\/guests$/, view: guestsView, nav: 'guests', title: 'guests.title' },
  { path: /^\/jobs$/, view: jobsView, nav: 'backup', title: 'backup.title' },
  { path: /^\/jobs\/new$/, view: jobFormView, nav: 'backup', title: 'form.titleNew' },
  { path: /^\/jobs\/([^/]+)\/edit$/, view: jobFormView, nav: 'backup', title: 'jobs.edit' },
  { path: /^\/restore$/, view: restoreView, nav: 'backup', title: 'restore.title' },
  { path: /^\/tasks$/, view: tasksView, nav: 'tasks', title: 'tasks.title' },
  { path: /^\/tasks\/([^/]+)$/, view: taskLogView, nav: (params) => (params.get('from') ? 'backup' : 'tasks'), title: 'log.title' },
];
const DEFAULT_ROUTE = '#/overview';

const NAV = [
  { id: 'overview', href: '#/overview', t: 'nav.overview' },
  { id: 'guests', href: '#/guests', t: 'nav.guests' },
  { id: 'backup', href: '#/jobs', t: 'nav.backup' },
  { id: 'tasks', href: '#/tasks', t: 'nav.tasks' },
];

const app = {
  status: null,
  returnTo: null,
  flash: null,
  cleanup: null,
  renderId: 0,
  title: 'app.name',
};

const $ = (id) => document.getElementById(id);

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '';
  const [path, search = ''] = raw.split('?');
  return { path: path || '/', params: new URLSearchParams(search) };
}

export function navigate(hash, flash) {
  if (flash) app.flash = flash;
  if (location.hash === hash) void route();
  else location.hash = hash;
}

async function loadStatus() {
  try {
    app.status = await get('/status');
  } catch (err) {
    if (err.status === 401) app.status = null;
    else throw err;
  }
  renderShell();
  return app.status;
}

function renderShell() {
  const loggedIn = Boolean(app.status);
  $('nav').hidden = !loggedIn;
  $('logout').hidden = !loggedIn;
  const info = $('node-info');
  clear(info);
  if (loggedIn) info.append(h('span', { t: ['nav.node', { node: app.status.node, version: app.status.version }] }));
}

function renderNav(active) {
  const nav = $('nav');
  nav.setAttribute('data-i18n-attr', JSON.stringify({ 'aria-label': 'nav.label' }));
  nav.replaceChildren(
    h(
      'ul',
      {},
      NAV.map((item) =>
        h(
          'li',
          {},
          h('a', { href: item.href, t: item.t, 'aria-current': item.id === active ? 'page' : undefined, class: item.id === active ? 'active' : undefined }),
        ),
      ),
    ),
  );
}

function renderLangSwitch() {
  const box = $('lang-switch');
  box.setAttribute('data-i18n-attr', JSON.stringify({ 'aria-label': 'lang.label' }));
  box.replaceChildren(
    ...LANGS.flatMap((code, i) => [
      i > 0 ? h('span', { class: 'sep', 'aria-hidden': 'true' }, '|') : null,
      h(
        'button',
        {
          type: 'button',
          lang: code,
          'data-lang': code,
          'aria-pressed': String(code === lang()),
          tAttr: { title: `lang.${code}` },
          on: { click: () => switchLang(code) },
        },
        code.toUpperCase(),
      ),
    ]).filter(Boolean),
  );
}

function switchLang(code) {
  setLang(code);
  for (const b of $('lang-switch').querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.lang === code));
  document.title = `${t(app.title)} – ${t('app.name')}`;
}

async function route() {
  const renderId = ++app.renderId;
  if (app.cleanup) {
    try {
      app.cleanup();
    } catch {
      /* a view's cleanup never blocks the next one */
    }
    app.cleanup = null;
  }
  const { path, params } = parseHash();
  const match = ROUTES.map((r) => ({ r, m: r.path.exec(path) })).find((x) => x.m);
  if (!match) {
    navigate(DEFAULT_ROUTE);
    return;
  }
  const { r, m } = match;
  if (!r.public && !app.status) {
    app.returnTo = location.hash;
    navigate('#/login');
    return;
  }
  if (r.public && app.status) {
    navigate(app.returnTo ?? DEFAULT_ROUTE);
    return;
  }
  renderNav(typeof r.nav === 'function' ? r.nav(params) : r.nav);
  const flash = $('flash');
  clear(flash);
  if (app.flash) {
    const [key, args] = Array.isArray(app.flash) ? app.flash : [app.flash];
    flash.append(h('p', { t: [key, args] }));
    app.flash = null;
  }
  const main = $('view');
  clear(main);
  main.setAttribute('aria-busy', 'true');
  app.title = r.title;
  document.title = `${t(r.title)} – ${t('app.name')}`;
  const ctx = {
    main,
    match: m,
    params,
    status: app.status,
    navigate,
    stale: () => renderId !== app.renderId,
    setCleanup: (fn) => {
      if (renderId === app.renderId) app.cleanup = fn;
      else fn();
    },
    loggedIn: async () => {
      await loadStatus();
      const back = app.returnTo && app.returnTo !== '#/login' ? app.returnTo : DEFAULT_ROUTE;
      app.returnTo = null;
      navigate(back);
    },
    refreshStatus: async () => {
      await loadStatus();
      return app.status;
    },
  };
  try {
    await r.view(ctx);
  } catch (err) {
    if (renderId !== app.renderId) return;
    if (err?.status === 401) return;
    main.append(h('p', { class: 'form-error', role: 'alert' }, t('common.error', { message: err?.message ?? String(err) })));
  } finally {
    if (renderId === app.renderId) main.removeAttribute('aria-busy');
  }
  if (renderId !== app.renderId) return;
  const heading = main.querySelector('h1');
  if (heading && !main.contains(document.activeElement)) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

async function logout() {
  try {
    await post('/logout');
  } catch {
    /* the session is gone either way */
  }
  app.status = null;
  app.returnTo = null;
  renderShell();
  navigate('#/login');
}

onUnauthorized(() => {
  if (!app.status) return;
  app.status = null;
  app.returnTo = location.hash;
  renderShell();
  navigate('#/login', 'login.expired');
});

async function boot() {
  const logoutBtn = $('logout');
  logoutBtn.textContent = '';
  logoutBtn.append(h('span', { t: 'nav.logout' }));
  logoutBtn.addEventListener('click', logout);
  renderLangSwitch();
  applyI18n(document);
  try {
    await loadStatus();
  } catch (err) {
    clear($('view')).append(h('p', { class: 'form-error', role: 'alert' }, t('common.error', { message: err.message })));
    return;
  }
  window.addEventListener('hashchange', () => void route());
  await route();
}

void boot();
