// The Restore tab's external-device picker: the attached disks that hold a coldvault datastore
// (GET /devices/datastores: told from what coldvault saw when it last had each disk mounted and from
// the jobs that name a disk; nothing is mounted to find them), each as path · size · filesystem ·
// label — datastore; "none" (the datastore folder as it is); and "another disk", a text field with
// the other attached disks as suggestions, for a path typed by hand. Under it, the chosen disk's
// datastore, the folder it is mounted on for the restore and its guests as last seen.
import { get } from '../api.js';
import { formatBytes, formatDay, h } from '../dom.js';

const NONE = '';
const TYPED = '__typed__';

/** `101 (1, 2, 3)`, `102 (1…14)`: a guest's versions on the disk, language-neutral. */
export function guestVersions(g) {
  const v = g.versions;
  return `${g.id} (${v.length <= 4 ? v.join(', ') : `${v[0]}…${v.at(-1)}`})`;
}

const datastoreText = (d) => d.datastoreIds.map((id) => id.slice(0, 8)).join(' / ');

export function devicePicker(p) {
  const typedOption = h('option', { value: TYPED, t: 'restore.deviceTyped' });
  const select = h('select', {}, h('option', { value: NONE, selected: true, t: 'restore.deviceNone' }), typedOption);
  const typed = h('input', {
    type: 'text',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'UUID=… / /dev/sdb1',
    list: `${p}-devices`,
    hidden: true,
    id: `${p}-fromDevice-typed`,
    tAttr: { 'aria-label': 'restore.deviceTypedLabel' },
  });
  const datalist = h('datalist', { id: `${p}-devices` });
  const detail = h('div', { class: 'hint device-detail', id: `${p}-device-detail`, role: 'status', 'aria-live': 'polite', hidden: true });
  const disks = new Map();

  async function load() {
    const found = await get('/devices/datastores').catch(() => ({ disks: [], others: [] }));
    for (const d of found.disks) {
      disks.set(d.spec, d);
      const args = { path: d.path, size: formatBytes(d.size), fs: d.fstype ?? '?', label: d.label ?? '–', datastore: datastoreText(d) };
      select.insertBefore(h('option', { value: d.spec, 'data-path': d.path, t: ['restore.deviceDisk', args] }), typedOption);
    }
    datalist.replaceChildren(
      ...found.others.map((o) => h('option', { value: o.uuid ? `UUID=${o.uuid}` : o.path }, [o.path, o.fstype, o.label].filter(Boolean).join(' · '))),
    );
  }

  function showDetail() {
    typed.hidden = select.value !== TYPED;
    const d = disks.get(select.value);
    detail.hidden = !d;
    if (!d) return detail.replaceChildren();
    const where = d.store
      ? h('p', { t: ['restore.deviceStore', { datastore: datastoreText(d), store: d.storeName ?? d.store }] })
      : h('p', { t: ['restore.deviceNoStore', { datastore: datastoreText(d) }] });
    const guests = d.guests
      ? h('p', { t: ['restore.deviceGuests', { date: formatDay(d.seen?.time), by: d.seen?.by ?? '', guests: d.guests.map(guestVersions).join(', ') || '–' }] })
      : h('p', { t: 'restore.deviceGuestsUnknown' });
    detail.replaceChildren(where, guests);
  }
  select.addEventListener('change', showDetail);

  return {
    select,
    /** the typed field and its suggestions, to put under the select */
    typed: [typed, datalist],
    /** the chosen disk's datastore, folder and guests, to put under the field's hint */
    detail,
    load,
    /** the chosen disk (undefined for none or a typed one) */
    chosen: () => disks.get(select.value),
    /** what the restore sends as fromDevice */
    value: () => (select.value === TYPED ? typed.value.trim() || undefined : select.value || undefined),
    onChange: (fn) => select.addEventListener('change', fn),
  };
}
