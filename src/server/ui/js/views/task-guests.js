// The guests of a finished backup job's task (its result: GET /api/v1/tasks/{id} -> result.guests):
// VMID, name, status, time and downtime, i.e. how long coldvault held the guest off (shutdown
// request to started again; '–' when it did not stop it), and for a cluster-mode push the disks'
// logical size and the bytes that went over the wire; for a job with bootTest, each new version's boot
// test (✓ seconds / ✗ failed, the detail as the cell's title).
import { h } from '../dom.js';
import { statusBadge } from './common.js';

const pad = (n) => String(n).padStart(2, '0');

/** HH:MM:SS of a duration, as the backup log writes it (`was off for 00:00:14`); '–' for none. */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  const s = Math.max(0, Math.round(ms / 1000));
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

/** Bytes as the CLI writes them (KiB, MiB, GiB); '–' for none. */
export function formatSize(bytes) {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(2)} ${units[unit]}`;
}

/** The table of a task's guests, or null when its result names none. */
export function taskGuests(task) {
  const guests = Array.isArray(task?.result?.guests) ? task.result.guests : [];
  if (guests.length === 0) return null;
  const pushed = guests.some((g) => g.wireBytes !== undefined);
  const booted = guests.some((g) => g.bootTest);
  const cols = [
    ...['col.vmid', 'col.name', 'col.status', 'log.col.time', 'log.col.downtime'],
    ...(pushed ? ['log.col.logical', 'log.col.wire'] : []),
    ...(booted ? ['log.col.bootTest'] : []),
  ];
  return h(
    'section',
    { class: 'task-guests', 'aria-labelledby': 'task-guests-title' },
    h('h2', { id: 'task-guests-title', t: 'log.guests' }),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'grid', id: 'task-guests' },
        h('thead', {}, h('tr', {}, ...cols.map((key) => h('th', { scope: 'col', t: key })))),
        h(
          'tbody',
          {},
          ...guests.map((g) =>
            h(
              'tr',
              { 'data-vmid': String(g.vmid) },
              h('th', { scope: 'row' }, String(g.vmid)),
              h('td', {}, g.name || '–'),
              h('td', {}, statusBadge(g.status)),
              h('td', { class: 'time' }, formatDuration(g.seconds * 1000)),
              h('td', { class: 'time downtime' }, formatDuration(g.downtimeMs)),
              ...(pushed ? [h('td', { class: 'size logical' }, formatSize(g.logicalBytes)), h('td', { class: 'size wire' }, formatSize(g.wireBytes))] : []),
              ...(booted ? [bootCell(g.bootTest)] : []),
            ),
          ),
        ),
      ),
    ),
    h('p', { class: 'hint', t: 'log.downtimeHint' }),
  );
}

/** `✓ 4.2 s` or `✗ failed`, the boot test's detail as the title; '–' when none ran. */
function bootCell(boot) {
  if (!boot) return h('td', { class: 'boot' }, '–');
  const t = boot.ok ? ['log.bootOk', { seconds: boot.seconds }] : 'log.bootFailed';
  return h('td', { class: `boot ${boot.ok ? 'ok' : 'failed'}`, title: boot.detail ?? '', t });
}
