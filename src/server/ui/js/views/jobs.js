// Backup -> Jobs: node, Mon..Sun, start time or schedule (the next run as its title), target dir, selection (a lock marker on encrypted jobs); per job Edit / Delete / Start now
// (Delete and Start now behind a confirm <dialog>). Start now -> POST /jobs/{id}/run -> the live log.
import { del, get, post } from '../api.js';
import { check, formatTime, h } from '../dom.js';
import { confirmDialog } from '../dialog.js';
import { backupHeader, errorBox } from './common.js';

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** A datastore's name for a folder (or an S3 datastore's address for its name, as a job names it), when the server knows one. */
export function storeLabel(dir, datastores) {
  const ds = datastores.find((d) => isStore(d, dir) && !d.name.startsWith('job:'));
  return ds ? `${ds.dir} (${ds.name})` : dir;
}

/** Whether a job's (or form's) store value names datastore `d`: its folder or S3 address, or an S3 datastore's name. */
export function isStore(d, value) {
  return d.dir === value || (d.kind === 's3' && d.name === value);
}

function selection(job) {
  if (!job.all) return h('span', {}, job.vmid.join(', '));
  if (job.exclude.length === 0) return h('span', { t: 'jobs.all' });
  return h('span', { t: ['jobs.allExcept', { list: job.exclude.join(', ') }] });
}

export async function jobsView(ctx) {
  const [jobs, status] = await Promise.all([get('/jobs'), ctx.refreshStatus()]);
  if (ctx.stale()) return;
  const message = h('div', { class: 'messages' });
  const newJob = h('button', { type: 'button', class: 'primary', id: 'new-job', t: 'jobs.new', on: { click: () => ctx.navigate('#/jobs/new') } });
  ctx.main.append(...backupHeader('jobs'), h('div', { class: 'toolbar' }, h('h2', { t: 'jobs.title' }), newJob), message);
  if (jobs.length === 0) {
    ctx.main.append(h('p', { class: 'empty', t: 'jobs.empty' }));
    return;
  }
  const running = new Set(status.running.map((r) => r.jobId).filter(Boolean));

  async function startNow(job, button) {
    if (!(await confirmDialog({ message: ['jobs.confirmStart', { id: job.id }], ok: 'jobs.startNow' }))) {
      button.focus();
      return;
    }
    try {
      const { taskId } = await post(`/jobs/${encodeURIComponent(job.id)}/run`);
      ctx.navigate(`#/tasks/${encodeURIComponent(taskId)}?from=jobs`);
    } catch (err) {
      message.replaceChildren(errorBox(err));
      button.focus();
    }
  }

  async function remove(job, button) {
    if (!(await confirmDialog({ message: ['jobs.confirmDelete', { id: job.id }], ok: 'jobs.delete', okClass: 'danger' }))) {
      button.focus();
      return;
    }
    try {
      await del(`/jobs/${encodeURIComponent(job.id)}`);
      ctx.navigate('#/jobs', ['jobs.deleted', { id: job.id }]);
    } catch (err) {
      message.replaceChildren(errorBox(err));
      button.focus();
    }
  }

  const rows = jobs.map((job) => {
    const startBtn = h('button', {
      type: 'button',
      class: 'primary small',
      'data-action': 'start',
      tAttr: { 'aria-label': ['jobs.startJob', { id: job.id }] },
      t: 'jobs.startNow',
    });
    const editBtn = h('button', {
      type: 'button',
      class: 'small',
      'data-action': 'edit',
      tAttr: { 'aria-label': ['jobs.editJob', { id: job.id }] },
      t: 'jobs.edit',
    });
    const deleteBtn = h('button', {
      type: 'button',
      class: 'small danger',
      'data-action': 'delete',
      tAttr: { 'aria-label': ['jobs.deleteJob', { id: job.id }] },
      t: 'jobs.delete',
    });
    startBtn.addEventListener('click', () => startNow(job, startBtn));
    editBtn.addEventListener('click', () => ctx.navigate(`#/jobs/${encodeURIComponent(job.id)}/edit`));
    deleteBtn.addEventListener('click', () => remove(job, deleteBtn));
    return h(
      'tr',
      { 'data-job': job.id, class: job.enabled ? undefined : 'disabled' },
      h(
        'th',
        { scope: 'row' },
        job.id,
        job.enabled ? null : [' ', h('span', { class: 'tag', t: 'jobs.disabled' })],
        job.encrypt
          ? [' ', h('span', { class: 'tag encrypted', tAttr: { title: ['jobs.encryptedWith', { file: job.encrypt.keyFile }] }, t: 'jobs.encrypted' })]
          : null,
        running.has(job.id) ? [' ', h('span', { class: 'badge status-running', t: 'status.running' })] : null,
      ),
      h('td', {}, job.node ?? status.node),
      WEEKDAYS.map((d) => h('td', { class: 'day' }, check(!job.schedule && job.days.includes(d)))),
      h(
        'td',
        { class: 'when', tAttr: job.nextRun ? { title: ['jobs.nextRun', { time: formatTime(job.nextRun) }] } : undefined },
        job.schedule ? h('code', { class: 'schedule' }, job.schedule) : job.at,
      ),
      h('td', { class: 'path' }, storeLabel(job.store, status.datastores)),
      h('td', {}, selection(job)),
      h('td', { class: 'actions' }, editBtn, deleteBtn, startBtn),
    );
  });

  ctx.main.append(
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'grid jobs' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col', t: 'jobs.col.job' }),
            h('th', { scope: 'col', t: 'jobs.col.node' }),
            WEEKDAYS.map((d) => h('th', { scope: 'col', class: 'day' }, h('abbr', { tAttr: { title: `day.long.${d}` }, t: `day.${d}` }))),
            h('th', { scope: 'col', t: 'jobs.col.at' }),
            h('th', { scope: 'col', t: 'jobs.col.store' }),
            h('th', { scope: 'col', t: 'jobs.col.selection' }),
            h('th', { scope: 'col', t: 'jobs.col.actions' }),
          ),
        ),
        h('tbody', {}, rows),
      ),
    ),
  );
}
