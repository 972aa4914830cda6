// Backup -> Restore: node (this one, or another of the config's cluster.nodes: GET /restore/nodes;
// shown when there are others), external device (optional, this node only: a picker of the attached
// disks that hold a coldvault datastore, or one typed by hand, restore-devices.js; the disk is mounted
// read-only on the chosen datastore folder for the restore; choosing a known disk chooses its folder
// and lists its guests' versions as coldvault last saw them, since its folder is empty while it is
// not mounted), from path (a datastore of GET /status; on another node: the datastore's
// name there), from ID, version, new ID; beside it the backups of that
// datastore as `ID: 101, Version: 1 (2014-03-06), name: test` (GET /backups?store=..&guest=..; with
// `, downtime: 00:00:14` when the backup recorded how long the guest was off), a click fills the
// form. An encrypted version carries a lock tag with its key's fingerprint; choosing it shows the
// Key file and Passphrase file fields (paths in the server's key folders, keyDirs: never a key), sent
// as keyFile / passphraseFile. The API's refusals (KEY_REQUIRED, KEY_WRONG, KEY_PASSPHRASE_WRONG,
// PATH_NOT_ALLOWED) show next to the key fields, which a refusal of that kind also brings up when the
// version was typed in rather than chosen. POST /restore -> {taskId} -> the live log, which ends
// `restore successful`. "Start the guest at once" sends `live: true` (restore on the fly, qemu driver
// only: the guest runs on its backup while its disks are copied) and, when given, the bandwidth field
// (shown while it is ticked) as `bwlimit` in MB/s; the server's refusal (another driver) shows as any
// other. A version that was boot-tested (coldvault boot-test, job bootTest) carries a
// tag (boots in N s / boot test failed, the detail as its title) and, on this node, a link to the
// PNG of the guest's screen at the end of the test (GET /backups/{id}/{version}/screenshot?store=).
import { API, get, post, query } from '../api.js';
import { formatDay, h, tx } from '../dom.js';
import { formatDuration } from './task-guests.js';
import { backupHeader, clearFieldErrors, errorBox, field, fieldOfMessage, setFieldError } from './common.js';
import { storeLabel } from './jobs.js';
import { devicePicker } from './restore-devices.js';

const VMID = /^[1-9][0-9]{2,8}$/;
const FIELDS = ['remote', 'fromDevice', 'fromPath', 'remoteStore', 'id', 'version', 'newId', 'unique', 'live', 'bwlimit', 'keyFile', 'passphraseFile'];
/** The key field a KEY_* refusal is about (its message names a version, which the aliases would take for the Version field). */
const KEY_CODES = { KEY_REQUIRED: 'keyFile', KEY_WRONG: 'keyFile', KEY_INVALID: 'keyFile', KEY_PASSPHRASE_WRONG: 'passphraseFile' };
const ALIASES = {
  // first: a key file's path may hold any word
  '^passphraseFile\\b': 'passphraseFile',
  '^keyFile\\b|passphraseFile goes with keyFile|key file': 'keyFile',
  "node '|cluster\\.nodes": 'remote',
  // before the version's: a live restore's refusals name the version they are about
  bwlimit: 'bwlimit',
  'live restore|qemu driver|live does not go': 'live',
  'newId|is already in use|not known to be stopped': 'newId',
  '[Vv]ersion \\d+|VERSION': 'version',
  'fromDevice|external device': 'fromDevice',
  'store |datastore': 'fromPath',
  'guest \\d+ (has no|not found)|no backup': 'id',
};

/** `ID: 101, Version: 1 (2014-03-06), name: test`, and `, downtime: 00:00:14` when the backup recorded one. */
function itemText(v) {
  const args = { id: v.id, version: v.version, date: formatDay(v.time), name: v.name || '–' };
  return v.downtimeMs === null || v.downtimeMs === undefined
    ? ['restore.item', args]
    : ['restore.itemDowntime', { ...args, downtime: formatDuration(v.downtimeMs) }];
}

/** 🔒 and the key's fingerprint, for an encrypted version. */
function lockTag(v) {
  const args = { fingerprint: v.keyFingerprint ?? '?' };
  return h('span', { class: 'tag encrypted', tAttr: { title: ['restore.encryptedTitle', args] }, t: ['restore.encrypted', args] });
}

/** The last boot test: a tag, and on this node a link to the screenshot. */
function bootTag(v, store, remote) {
  const b = v.bootTest;
  if (!b) return null;
  const title = ['restore.bootTitle', { at: formatDay(b.at), detail: b.detail ?? '' }];
  const tag = h('span', {
    class: `tag boot ${b.ok ? 'ok' : 'failed'}`,
    tAttr: { title },
    t: b.ok ? ['restore.bootOk', { seconds: b.seconds }] : 'restore.bootFailed',
  });
  if (remote) return [' ', tag];
  const href = `${API}/backups/${v.id}/${v.version}/screenshot${query({ store })}`;
  return [
    ' ',
    tag,
    ' ',
    h('a', { class: 'screenshot', href, target: '_blank', rel: 'noopener', tAttr: { title: 'restore.screenshotTitle' }, t: 'restore.screenshot' }),
  ];
}

export async function restoreView(ctx) {
  const [status, guests, cluster] = await Promise.all([ctx.refreshStatus(), get('/guests'), get('/restore/nodes')]);
  if (ctx.stale()) return;
  const p = 'restore';
  const takenIds = new Set(guests.map((g) => g.id));

  const device = devicePicker(p);
  const deviceField = field(p, 'fromDevice', 'restore.device', device.select, 'restore.deviceNote');
  device.select.after(...device.typed);
  deviceField.querySelector('.control').append(device.detail);
  const fromPath = h(
    'select',
    { required: true },
    status.datastores.map((d, i) => h('option', { value: d.dir, selected: i === 0 }, storeLabel(d.dir, status.datastores))),
  );
  const remote = h('select', {}, [
    h('option', { value: '', selected: true, t: ['restore.thisNode', { node: cluster.self }] }),
    ...cluster.nodes.map((n) => h('option', { value: n.name }, n.name)),
  ]);
  const remoteStore = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', size: '16', placeholder: 'main' });
  const fromId = h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off', size: '10', list: `${p}-ids` });
  const idList = h('datalist', { id: `${p}-ids` });
  const version = h('input', { type: 'number', min: '1', step: '1', size: '6' });
  const newId = h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off', size: '10' });
  const unique = h('input', { type: 'checkbox', id: `${p}-unique`, name: 'unique' });
  const live = h('input', { type: 'checkbox', id: `${p}-live`, name: 'live', 'aria-describedby': `${p}-live-hint` });
  const bwlimit = h('input', { type: 'number', min: '0', step: 'any', size: '6', inputmode: 'decimal' });
  const keyFile = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: '/etc/coldvault/keys/…' });
  const passphraseFile = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const keyNeeded = h('p', { class: 'hint key-needed', id: `${p}-key-needed`, role: 'status', hidden: true });
  const keyField = field(p, 'keyFile', 'restore.keyFile', keyFile, 'restore.keyFileNote');
  keyFile.after(keyNeeded); // under the input: which key this version needs
  const summary = h('div', { class: 'form-summary' });
  const submit = h('button', { type: 'submit', class: 'primary', t: 'restore.submit' });

  const form = h(
    'form',
    { class: 'card restore-form', novalidate: true, 'aria-labelledby': 'restore-title' },
    h('h2', { id: 'restore-title', t: 'restore.title' }),
    field(p, 'remote', 'restore.node', remote, 'restore.nodeNote'),
    deviceField,
    field(p, 'fromPath', 'restore.fromPath', fromPath, status.datastores.length ? undefined : 'restore.noStores'),
    field(p, 'remoteStore', 'restore.remoteStore', remoteStore, 'restore.remoteStoreNote'),
    field(p, 'id', 'restore.fromId', fromId),
    idList,
    field(p, 'version', 'restore.version', version),
    field(p, 'newId', 'restore.newId', newId),
    keyField,
    field(p, 'passphraseFile', 'restore.passphraseFile', passphraseFile, 'restore.passphraseFileNote'),
    h(
      'div',
      { class: 'field check-field', 'data-field': 'unique' },
      h('span'),
      h(
        'div',
        { class: 'control' },
        unique,
        h('label', { for: `${p}-unique`, t: 'restore.unique' }),
        h('p', { class: 'field-error', id: `${p}-unique-error`, hidden: true }),
      ),
    ),
    h(
      'div',
      { class: 'field check-field', 'data-field': 'live' },
      h('span'),
      h(
        'div',
        { class: 'control' },
        live,
        h('label', { for: `${p}-live`, t: 'restore.live' }),
        h('p', { class: 'hint', id: `${p}-live-hint`, t: 'restore.liveNote' }),
        h('p', { class: 'field-error', id: `${p}-live-error`, hidden: true }),
      ),
    ),
    field(p, 'bwlimit', 'restore.bwlimit', bwlimit, 'restore.bwlimitNote'),
    summary,
    h('div', { class: 'buttons' }, submit),
  );

  const list = h('ul', { class: 'backup-list', id: 'backup-list', 'aria-labelledby': 'backups-title' });
  const listState = h('div', { class: 'list-state' });
  const listBox = h(
    'section',
    { class: 'card backups', 'aria-labelledby': 'backups-title' },
    h('h2', { id: 'backups-title', t: 'restore.list' }),
    h('p', { class: 'hint', t: 'restore.listHint' }),
    listState,
    list,
  );

  ctx.main.append(...backupHeader('restore'), h('div', { class: 'columns restore' }, form, listBox));

  let loadSeq = 0;
  const fieldOf = (name) => form.querySelector(`[data-field="${name}"]`);
  fieldOf('remote').hidden = cluster.nodes.length === 0;

  /** Another node: its datastore by name instead of this node's folders and devices. */
  function showSource() {
    const other = remote.value !== '';
    fieldOf('fromDevice').hidden = other;
    fieldOf('fromPath').hidden = other;
    fieldOf('remoteStore').hidden = !other;
  }
  showSource();

  /** The versions listed (this store's), by `id/version`: whether the one in the form is encrypted, and with which key. */
  const listed = new Map();
  let keyAsked = false;

  /** The key fields: shown for an encrypted version, when a refusal asked for them, or when filled in. */
  function showKeyFields() {
    const v = listed.get(`${fromId.value.trim()}/${version.value}`);
    const show = Boolean(v?.encrypted) || keyAsked || keyFile.value.trim() !== '' || passphraseFile.value.trim() !== '';
    fieldOf('keyFile').hidden = !show;
    fieldOf('passphraseFile').hidden = !show;
    keyNeeded.hidden = !v?.encrypted;
    keyNeeded.replaceChildren(v?.encrypted ? tx('restore.keyNeeded', { id: v.id, version: v.version, fingerprint: v.keyFingerprint ?? '?' }) : '');
  }

  /** The bandwidth field goes with a live restore only. */
  function showBwlimit() {
    fieldOf('bwlimit').hidden = !live.checked;
  }
  showBwlimit();
  live.addEventListener('change', showBwlimit);

  function suggestNewId(from) {
    for (let n = Math.max(Number(from) + 1, 100); n < 1_000_000_000; n++) if (!takenIds.has(String(n))) return String(n);
    return '';
  }

  function choose(v, button) {
    for (const b of list.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b === button));
    fromId.value = v.id;
    version.value = String(v.version);
    if (!newId.value || newId.dataset.suggested === 'true') {
      newId.value = suggestNewId(v.id);
      newId.dataset.suggested = 'true';
    }
    showKeyFields();
  }

  /** A known disk is chosen: its guests' versions as coldvault last saw them (its folder is empty until the restore mounts it). */
  function listDisk(disk) {
    loadSeq++;
    listed.clear();
    showKeyFields();
    if (!disk.guests) {
      list.replaceChildren();
      listState.replaceChildren(h('p', { class: 'empty', t: 'restore.listDiskUnknown' }));
      return;
    }
    listState.replaceChildren(h('p', { class: 'hint', t: ['restore.listOnDisk', { date: formatDay(disk.seen?.time) }] }));
    const items = disk.guests.flatMap((g) => [...g.versions].reverse().map((version) => ({ id: g.id, version })));
    list.replaceChildren(
      ...items.map((v) => {
        const button = h(
          'button',
          { type: 'button', class: 'backup-item', 'aria-pressed': 'false', 'data-id': v.id, 'data-version': String(v.version) },
          h('span', { t: ['restore.itemOnDisk', v] }),
        );
        button.addEventListener('click', () => choose(v, button));
        return h('li', {}, button);
      }),
    );
  }

  async function loadBackups() {
    const disk = remote.value ? undefined : device.chosen();
    if (disk) return listDisk(disk);
    const seq = ++loadSeq;
    const guest = fromId.value.trim();
    const store = remote.value ? remoteStore.value.trim() : fromPath.value;
    if (!store) {
      list.replaceChildren();
      listState.replaceChildren(h('p', { class: 'empty', t: remote.value ? 'restore.remoteStoreNote' : 'restore.noStores' }));
      return;
    }
    list.setAttribute('aria-busy', 'true');
    try {
      const versions = await get(`/backups${query({ remote: remote.value || undefined, store, guest: VMID.test(guest) ? guest : undefined })}`);
      if (seq !== loadSeq || ctx.stale()) return;
      versions.sort((a, b) => Number(a.id) - Number(b.id) || b.version - a.version);
      listed.clear();
      for (const v of versions) listed.set(`${v.id}/${v.version}`, v);
      showKeyFields();
      idList.replaceChildren(...[...new Set(versions.map((v) => v.id))].map((vmid) => h('option', { value: vmid })));
      listState.replaceChildren(versions.length ? '' : h('p', { class: 'empty', t: 'restore.listEmpty' }));
      list.replaceChildren(
        ...versions.map((v) => {
          const button = h(
            'button',
            {
              type: 'button',
              class: 'backup-item',
              'aria-pressed': 'false',
              'data-id': v.id,
              'data-version': String(v.version),
              'data-encrypted': v.encrypted ? 'true' : undefined,
            },
            h('span', { t: itemText(v) }),
            v.encrypted ? [' ', lockTag(v)] : null,
          );
          button.addEventListener('click', () => choose(v, button));
          return h('li', {}, button, bootTag(v, store, remote.value));
        }),
      );
    } catch (err) {
      if (seq !== loadSeq || err.status === 401) return;
      list.replaceChildren();
      listState.replaceChildren(errorBox(err));
    } finally {
      if (seq === loadSeq) list.removeAttribute('aria-busy');
    }
  }

  let debounce = null;
  device.onChange(() => {
    const disk = device.chosen();
    if (disk?.store) {
      if (![...fromPath.options].some((o) => o.value === disk.store)) fromPath.append(h('option', { value: disk.store }, disk.storeName ?? disk.store));
      fromPath.value = disk.store;
    }
    void loadBackups();
  });
  fromPath.addEventListener('change', () => void loadBackups());
  remote.addEventListener('change', () => {
    showSource();
    void loadBackups();
  });
  remoteStore.addEventListener('change', () => void loadBackups());
  fromId.addEventListener('input', () => {
    clearTimeout(debounce);
    const v = fromId.value.trim();
    if (v === '' || VMID.test(v)) debounce = setTimeout(() => void loadBackups(), 250);
  });
  newId.addEventListener('input', () => {
    newId.dataset.suggested = 'false';
  });
  version.addEventListener('input', showKeyFields);
  fromId.addEventListener('input', showKeyFields);
  showKeyFields();
  ctx.setCleanup(() => clearTimeout(debounce));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    summary.replaceChildren();
    const other = remote.value !== '';
    const body = {
      remote: other ? remote.value : undefined,
      fromPath: (other ? remoteStore.value.trim() : fromPath.value) || undefined,
      fromDevice: other ? undefined : device.value(),
      id: fromId.value.trim(),
      version: version.value === '' ? undefined : Number(version.value),
      newId: newId.value.trim(),
      unique: unique.checked || undefined,
      live: live.checked || undefined,
      bwlimit: live.checked && bwlimit.value !== '' ? Number(bwlimit.value) : undefined,
      keyFile: keyFile.value.trim() || undefined,
      passphraseFile: passphraseFile.value.trim() || undefined,
    };
    submit.disabled = true;
    try {
      const { taskId } = await post('/restore', body);
      ctx.navigate(`#/tasks/${encodeURIComponent(taskId)}?from=restore`);
    } catch (err) {
      if (err.status === 401) return;
      const found = KEY_CODES[err.code] ?? fieldOfMessage(err.message, FIELDS, ALIASES);
      const name = other && found === 'fromPath' ? 'remoteStore' : found;
      if (name === 'keyFile' || name === 'passphraseFile') {
        keyAsked = true;
        showKeyFields();
      }
      if (name) setFieldError(form, name, err.message);
      summary.replaceChildren(errorBox(err, 'restore.notStarted'));
      const target = name ? form.querySelector(`[data-field="${name}"] input, [data-field="${name}"] select`) : null;
      target?.focus();
    } finally {
      submit.disabled = false;
    }
  });

  await Promise.all([device.load(), loadBackups()]);
}
