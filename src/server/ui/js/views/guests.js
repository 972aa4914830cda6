// Guests: VMID, status, name, type, disk size (GET /api/v1/guests).
import { get } from '../api.js';
import { formatBytes, h } from '../dom.js';

export function guestStatus(status) {
  return h('span', { class: `guest-status guest-${status}`, t: `guest.status.${status}` });
}

export function diskSize(bytes) {
  return bytes === null || bytes === undefined ? h('span', { class: 'muted', t: 'guest.diskMissing' }) : formatBytes(bytes);
}

export async function guestsView(ctx) {
  const guests = await get('/guests');
  if (ctx.stale()) return;
  ctx.main.append(h('h1', { t: 'guests.title' }));
  if (guests.length === 0) {
    ctx.main.append(h('p', { class: 'empty', t: 'guests.empty' }));
    return;
  }
  ctx.main.append(
    h(
      'table',
      { class: 'grid guests' },
      h('caption', { class: 'sr-only', t: ['guests.caption', { node: ctx.status.node }] }),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col', t: 'col.vmid' }),
          h('th', { scope: 'col', t: 'col.status' }),
          h('th', { scope: 'col', t: 'col.name' }),
          h('th', { scope: 'col', t: 'col.type' }),
          h('th', { scope: 'col', class: 'num', t: 'col.diskSize' }),
        ),
      ),
      h(
        'tbody',
        {},
        guests.map((g) =>
          h(
            'tr',
            { 'data-vmid': g.id },
            h('th', { scope: 'row' }, g.id),
            h('td', {}, guestStatus(g.status)),
            h('td', {}, g.name || '–'),
            h('td', {}, g.type),
            h('td', { class: 'num' }, diskSize(g.diskSize)),
          ),
        ),
      ),
    ),
  );
}
