// The live log of a task: GET /api/v1/tasks/{id}/log as server-sent events (EventSource; the
// browser resumes after the last line it got when the connection drops) until the `end` event,
// then the final status. While it runs, GET /api/v1/status gives the progress of the current disk.
import { API, get } from '../api.js';
import { formatBytes, formatTime, h } from '../dom.js';
import { t } from '../i18n.js';
import { statusBadge } from './common.js';
import { taskGuests } from './task-guests.js';

const BACK = {
  jobs: ['#/jobs', 'log.backToJobs'],
  restore: ['#/restore', 'log.backToRestore'],
};

export async function taskLogView(ctx) {
  const id = decodeURIComponent(ctx.match[1]);
  const task = await get(`/tasks/${encodeURIComponent(id)}`);
  if (ctx.stale()) return;

  const statusBox = h('span', { id: 'task-status', class: 'task-status' }, statusBadge(task.status));
  const endBox = h('dd', { class: 'time' }, formatTime(task.end));
  const state = h('p', { class: 'log-state', role: 'status', t: task.status === 'running' ? 'log.following' : 'log.ended' });
  const bar = h('progress', { id: 'task-progress', max: '1', value: '0' });
  const barText = h('span', { class: 'progress-text' });
  const progress = h('div', { class: 'progress', hidden: true }, h('label', { for: 'task-progress', t: 'log.progress' }), bar, barText);
  const guests = h('div', { class: 'task-guests-box' }, task.status === 'running' ? null : taskGuests(task));
  const log = h('pre', { id: 'task-log', class: 'log', role: 'log', 'aria-live': 'polite', tabindex: '0', 'aria-labelledby': 'log-heading' });
  const [backHref, backKey] = BACK[ctx.params.get('from')] ?? ['#/tasks', 'log.backToTasks'];

  ctx.main.append(
    h('div', { class: 'toolbar' }, h('h1', { id: 'log-heading', t: 'log.title' }), h('a', { class: 'button', href: backHref, t: backKey })),
    h(
      'dl',
      { class: 'task-meta' },
      h('dt', { t: 'tasks.col.id' }),
      h('dd', { class: 'mono' }, task.id),
      h('dt', { t: 'tasks.col.summary' }),
      h('dd', {}, task.summary ?? task.type),
      h('dt', { t: 'tasks.col.start' }),
      h('dd', { class: 'time' }, formatTime(task.start)),
      h('dt', { t: 'tasks.col.end' }),
      endBox,
      h('dt', { t: 'log.status' }),
      h('dd', {}, statusBox),
    ),
    guests,
    state,
    progress,
    log,
  );

  let next = 0;
  let ended = false;
  let progressTimer = null;
  const source = new EventSource(`${API}/tasks/${encodeURIComponent(id)}/log`);

  function setState(key) {
    state.dataset.i18n = key;
    state.textContent = t(key);
  }

  function append(line) {
    if (line.n < next) return;
    next = line.n + 1;
    const follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.append(h('span', { class: `line level-${line.level}`, 'data-n': String(line.n) }, line.text), '\n');
    if (follow) log.scrollTop = log.scrollHeight;
  }

  async function finish(status) {
    ended = true;
    source.close();
    clearTimeout(progressTimer);
    progress.hidden = true;
    statusBox.replaceChildren(statusBadge(status));
    setState('log.ended');
    try {
      const done = await get(`/tasks/${encodeURIComponent(id)}`);
      endBox.textContent = formatTime(done.end);
      statusBox.replaceChildren(statusBadge(done.status));
      guests.replaceChildren(taskGuests(done) ?? '');
    } catch {
      /* the status from the stream stands */
    }
    log.dataset.ended = 'true';
  }

  async function pollProgress() {
    if (ended) return;
    try {
      const status = await get('/status');
      const mine = status.running.find((r) => r.taskId === id)?.progress;
      if (mine && !ended) {
        progress.hidden = false;
        bar.max = Math.max(1, mine.totalBytes);
        bar.value = Math.min(mine.readBytes, bar.max);
        barText.textContent = `${mine.item}: ${formatBytes(mine.readBytes)} / ${formatBytes(mine.totalBytes)}`;
      }
    } catch {
      /* progress is a nicety */
    }
    if (!ended) progressTimer = setTimeout(pollProgress, 1000);
  }

  source.addEventListener('message', (event) => append(JSON.parse(event.data)));
  source.addEventListener('end', (event) => void finish(JSON.parse(event.data).status));
  source.addEventListener('error', () => {
    if (ended || source.readyState !== EventSource.CLOSED) return; // CONNECTING: the browser retries by itself
    setState('log.lost');
    void get(`/tasks/${encodeURIComponent(id)}`)
      .then((info) => {
        if (info.status !== 'running') void finish(info.status);
      })
      .catch(() => undefined);
  });
  ctx.setCleanup(() => {
    ended = true;
    source.close();
    clearTimeout(progressTimer);
  });
  if (task.status === 'running') void pollProgress();
}
