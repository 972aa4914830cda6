// Tasks, newest first (GET /api/v1/tasks), each linking to its log, with who started it; refreshed while any runs.
import { get } from '../api.js';
import { formatTime, h } from '../dom.js';
import { statusBadge } from './common.js';

export async function tasksView(ctx) {
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', t: 'tasks.empty', hidden: true });
  const table = h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'grid tasks' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col', t: 'tasks.col.id' }),
          h('th', { scope: 'col', t: 'tasks.col.type' }),
          h('th', { scope: 'col', t: 'tasks.col.job' }),
          h('th', { scope: 'col', t: 'tasks.col.status' }),
          h('th', { scope: 'col', t: 'tasks.col.start' }),
          h('th', { scope: 'col', t: 'tasks.col.end' }),
          h('th', { scope: 'col', t: 'tasks.col.startedBy' }),
          h('th', { scope: 'col', t: 'tasks.col.summary' }),
        ),
      ),
      tbody,
    ),
  );
  let timer = null;
  let stopped = false;

  async function load() {
    const tasks = await get('/tasks?limit=100');
    if (stopped || ctx.stale()) return;
    tbody.replaceChildren(
      ...tasks.map((task) =>
        h(
          'tr',
          { 'data-task': task.id },
          h(
            'th',
            { scope: 'row' },
            h('a', { href: `#/tasks/${encodeURIComponent(task.id)}`, tAttr: { 'aria-label': ['tasks.showLogOf', { id: task.id }] } }, task.id),
          ),
          h('td', {}, task.type),
          h('td', {}, task.jobId ?? '–'),
          h('td', {}, statusBadge(task.status)),
          h('td', { class: 'time' }, formatTime(task.start)),
          h('td', { class: 'time' }, formatTime(task.end)),
          h('td', { class: 'started-by' }, task.startedBy ?? '–'),
          h('td', {}, task.summary ?? ''),
        ),
      ),
    );
    empty.hidden = tasks.length > 0;
    table.hidden = tasks.length === 0;
    if (tasks.some((task) => task.status === 'running')) timer = setTimeout(() => void load().catch(() => undefined), 2000);
  }

  ctx.setCleanup(() => {
    stopped = true;
    clearTimeout(timer);
  });
  await load();
  if (ctx.stale()) return;
  ctx.main.append(
    h(
      'div',
      { class: 'toolbar' },
      h('h1', { t: 'tasks.title' }),
      h('button', {
        type: 'button',
        t: 'common.refresh',
        on: {
          click: () => {
            clearTimeout(timer);
            void load();
          },
        },
      }),
    ),
    empty,
    table,
  );
}
