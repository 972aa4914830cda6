// The new-job / edit-job form with every field of the seed: node, target dir, external device,
// weekdays, start time, mode, mail to, include all guests (then an exclude list), keep (1-x), script
// before, script after, cold snapshot (auto / off), full read every N days, the key file and passphrase file of an
// encrypted job (paths in the server's key folders, never a key), the webhook (URL, a write-only secret: the
// API never sends it back, the form says "set" and offers to remove it; always / on failure only; ntfy topic), the boot test of each new version (a
// checkbox and its console pattern; backup jobs into a datastore of this node), and the guest table (VMID / status / name /
// type / disk size) to select guests. The API validates; its errors are shown next to the field they name and above the buttons.
// The schedule field (a Proxmox calendar event or cron) replaces weekdays + start time when filled.
// Editing sends the whole job back (PUT replaces it), with the fields this form does not show kept.
import { get, post, put } from '../api.js';
import { h, splitList } from '../dom.js';
import { backupHeader, clearFieldErrors, errorBox, field, fieldOfMessage, groupField, offerDevices, setFieldError } from './common.js';
import { diskSize, guestStatus } from './guests.js';
import { isStore, storeLabel, WEEKDAYS } from './jobs.js';

const FIELDS = [
  'id',
  'node',
  'store',
  'device',
  'objectLockDays',
  'days',
  'at',
  'schedule',
  'mode',
  'snapshot',
  'mailto',
  'webhookUrl',
  'webhookSecret',
  'webhookNotification',
  'webhookTopic',
  'all',
  'exclude',
  'keep',
  'fullEvery',
  'scriptBefore',
  'scriptAfter',
  'keyFile',
  'passphraseFile',
  'bootTestExpect',
  'bootTest',
  'enabled',
  'vmid',
];
const ALIASES = {
  // first: a key file's path may hold any word
  'encrypt[./]passphraseFile': 'passphraseFile',
  "encrypt[./]keyFile|^(job '[^']*': )?encrypt\\b|body/encrypt": 'keyFile',
  '\\(vmid\\)|^vmid': 'vmid',
  'exclude only goes with all': 'exclude',
  '^job id ': 'id',
  'already exists': 'id',
  'mail address': 'mailto',
  // first: the secret's and the topic's messages also name the URL
  'webhook\\.secret': 'webhookSecret',
  'webhook\\.topic': 'webhookTopic',
  'webhook\\.notification': 'webhookNotification',
  "webhook\\.url|body/webhook|^(job '[^']*': )?webhook\\b": 'webhookUrl',
  'datastore|^store': 'store',
};

/** A job's `encrypt`: the key file's path and, if given, the passphrase file's (paths only). */
function encryptSetting(keyFile, passphraseFile) {
  return passphraseFile ? { keyFile, passphraseFile } : { keyFile };
}

/**
 * The webhook's fields: URL, secret (write-only: a job's answer only says `hasSecret`; empty keeps the
 * stored one, the checkbox removes it), always / on failure only, ntfy topic; `value()` is the job's
 * `webhook` to send (undefined without a URL: PUT then removes it).
 */
function webhookControls(p, webhook) {
  const url = h('input', { type: 'url', autocomplete: 'off', spellcheck: 'false', placeholder: 'https://ntfy.example.com/', value: webhook?.url ?? '' });
  const secret = h('input', {
    type: 'password',
    autocomplete: 'new-password',
    spellcheck: 'false',
    tAttr: webhook?.hasSecret ? { placeholder: 'form.webhookSecretSet' } : undefined,
  });
  const remove = h('input', { type: 'checkbox', id: `${p}-webhookSecretRemove` });
  const notification = h(
    'select',
    {},
    ['always', 'failure'].map((v) => h('option', { value: v, selected: (webhook?.notification ?? 'always') === v, t: `form.webhookNotification.${v}` })),
  );
  const topic = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', value: webhook?.topic ?? '' });
  const removeField = h(
    'div',
    { class: 'field check-field', 'data-field': 'webhookSecretRemove', hidden: !webhook?.hasSecret },
    h('span'),
    h('div', { class: 'control' }, remove, h('label', { for: remove.id, t: 'form.webhookSecretRemove' })),
  );
  remove.addEventListener('change', () => {
    secret.disabled = remove.checked;
    if (remove.checked) secret.value = '';
  });
  const fields = [
    field(p, 'webhookUrl', 'form.webhookUrl', url, 'form.webhookUrlHint'),
    field(p, 'webhookSecret', 'form.webhookSecret', secret, webhook?.hasSecret ? 'form.webhookSecretSetHint' : 'form.webhookSecretHint'),
    removeField,
    field(p, 'webhookNotification', 'form.webhookNotification', notification),
    field(p, 'webhookTopic', 'form.webhookTopic', topic, 'form.webhookTopicHint'),
  ];
  const value = () => {
    if (!url.value.trim()) return undefined;
    const setting = { url: url.value.trim(), notification: notification.value };
    if (topic.value.trim()) setting.topic = topic.value.trim();
    if (secret.value) setting.secret = secret.value;
    else if (remove.checked) setting.secret = null;
    return setting;
  };
  return { fields, value };
}

function suggestId(jobs) {
  const taken = new Set(jobs.map((j) => j.id));
  for (let n = 1; ; n++) if (!taken.has(`job${n}`)) return `job${n}`;
}

export async function jobFormView(ctx) {
  const editId = ctx.match[1] ? decodeURIComponent(ctx.match[1]) : null;
  const [status, guests, jobs, job, ring] = await Promise.all([
    ctx.refreshStatus(),
    get('/guests'),
    get('/jobs'),
    editId ? get(`/jobs/${encodeURIComponent(editId)}`) : Promise.resolve(null),
    get('/restore/nodes').catch(() => ({ nodes: [] })),
  ]);
  if (ctx.stale()) return;
  const p = 'job';

  const id = h('input', {
    type: 'text',
    required: true,
    autocomplete: 'off',
    spellcheck: 'false',
    value: job?.id ?? suggestId(jobs),
    readOnly: Boolean(job),
    pattern: '[A-Za-z][A-Za-z0-9_.\\-]{0,63}',
  });
  const node = h('input', { type: 'text', autocomplete: 'off', value: job?.node ?? status.node });
  const stores = status.datastores.filter((d) => !d.name.startsWith('job:') || d.dir === job?.store);
  const store = h(
    'select',
    { required: true },
    stores.map((d) => h('option', { value: d.dir, selected: isStore(d, job?.store) }, storeLabel(d.dir, status.datastores))),
  );
  if (job && !stores.some((d) => isStore(d, job.store))) store.append(h('option', { value: job.store, selected: true }, job.store));
  const device = h('input', {
    type: 'text',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: '/dev/sdb1',
    value: job?.device ?? '',
    list: `${p}-devices`,
  });
  offerDevices(`${p}-devices`);
  const objectLockDays = h('input', { type: 'number', min: '1', max: '36500', step: '1', size: '5', value: job?.objectLockDays ?? '' });
  const toS3 = () => stores.find((d) => d.dir === store.value)?.kind === 's3';
  const dayBoxes = Object.fromEntries(
    WEEKDAYS.map((d) => [d, h('input', { type: 'checkbox', id: `${p}-day-${d}`, name: 'days', value: d, checked: job?.days.includes(d) })]),
  );
  const days = h(
    'div',
    { class: 'days' },
    WEEKDAYS.map((d) =>
      h('span', { class: 'day-choice' }, dayBoxes[d], h('label', { for: `${p}-day-${d}`, tAttr: { title: `day.long.${d}` }, t: `day.${d}` })),
    ),
  );
  const at = h('input', { type: 'text', required: true, inputmode: 'numeric', autocomplete: 'off', placeholder: 'HH:MM', size: '6', value: job?.at ?? '' });
  const schedule = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'mon..fri 22:30', value: job?.schedule ?? '' });
  const mode = h(
    'select',
    {},
    h('option', { value: 'stop', selected: job?.mode !== 'cluster', t: 'form.mode.stop' }),
    ...(ring.sendsTo || job?.mode === 'cluster' ? [h('option', { value: 'cluster', selected: job?.mode === 'cluster', t: 'form.mode.cluster' })] : []),
  );
  // kind: a backup job, or a sync job that pulls the versions a local store lacks from another node's store
  const otherNodes = ring.nodes ?? [];
  const kind = h(
    'select',
    {},
    h('option', { value: 'backup', selected: job?.kind !== 'sync', t: 'form.kind.backup' }),
    ...(otherNodes.length > 0 || job?.kind === 'sync' ? [h('option', { value: 'sync', selected: job?.kind === 'sync', t: 'form.kind.sync' })] : []),
  );
  const from = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'node1:main', value: job?.from ?? '', list: `${p}-sources` });
  const sources = h('datalist', { id: `${p}-sources` }, ...otherNodes.map((n) => h('option', { value: `${n.name}:` })));
  // cluster mode: the store is a datastore's name on the node the backups land on (the previous one of the ring)
  const remoteStore = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', value: job?.mode === 'cluster' ? job.store : '' });
  const bwlimit = h('input', { type: 'number', min: '0', step: 'any', size: '6', value: job?.bwlimit ?? '' });
  const landing = h('p', { class: 'hint landing', id: `${p}-landing`, t: ['form.clusterLanding', { node: ring.sendsTo ?? '?' }] });
  const snapshot = h(
    'select',
    {},
    ['auto', 'off'].map((v) => h('option', { value: v, selected: (job?.snapshot ?? 'auto') === v, t: `form.snapshot.${v}` })),
  );
  const mailto = h('input', { type: 'text', autocomplete: 'off', value: (job?.mailto ?? []).join(', ') });
  const hook = webhookControls(p, job?.webhook);
  const all = h('input', { type: 'checkbox', checked: job?.all ?? false });
  const exclude = h('input', { type: 'text', autocomplete: 'off', inputmode: 'numeric', value: (job?.exclude ?? []).join(', ') });
  const keep = h('input', { type: 'number', min: '1', step: '1', size: '4', value: job?.keep ?? '' });
  const fullEvery = h('input', { type: 'number', min: '0', step: '1', size: '4', value: job?.fullEvery ?? 7 });
  const scriptBefore = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', value: job?.scriptBefore ?? '' });
  const scriptAfter = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', value: job?.scriptAfter ?? '' });
  const keyFile = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', value: job?.encrypt?.keyFile ?? '' });
  const passphraseFile = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', value: job?.encrypt?.passphraseFile ?? '' });
  const bootTest = h('input', { type: 'checkbox', checked: job?.bootTest ?? false });
  const bootTestExpect = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', value: job?.bootTestExpect ?? '' });
  const enabled = h('input', { type: 'checkbox', checked: job?.enabled ?? true });

  const selected = new Set(job && !job.all ? job.vmid : []);
  const guestBoxes = new Map();
  const guestRows = guests.map((g) => {
    const box = h('input', {
      type: 'checkbox',
      name: 'vmid',
      value: g.id,
      checked: selected.has(g.id),
      tAttr: { 'aria-label': ['form.selectGuest', { id: g.id }] },
    });
    guestBoxes.set(g.id, box);
    return h(
      'tr',
      { 'data-vmid': g.id },
      h('td', { class: 'select' }, box),
      h('th', { scope: 'row' }, g.id),
      h('td', {}, guestStatus(g.status)),
      h('td', {}, g.name || '–'),
      h('td', {}, g.type),
      h('td', { class: 'num' }, diskSize(g.diskSize)),
    );
  });
  // Guests named by the job that are not (or no longer) in the guests folder stay selectable.
  for (const vmid of selected) {
    if (guestBoxes.has(vmid)) continue;
    const box = h('input', { type: 'checkbox', name: 'vmid', value: vmid, checked: true, tAttr: { 'aria-label': ['form.selectGuest', { id: vmid }] } });
    guestBoxes.set(vmid, box);
    guestRows.push(
      h(
        'tr',
        { 'data-vmid': vmid },
        h('td', { class: 'select' }, box),
        h('th', { scope: 'row' }, vmid),
        h('td', {}, '–'),
        h('td', {}, '–'),
        h('td', {}, '–'),
        h('td', {}, '–'),
      ),
    );
  }
  const allNote = h('p', { class: 'note', t: 'form.guestsAll' });
  const guestTable = h(
    'table',
    { class: 'grid guests select-table' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('td', { class: 'select' }),
        h('th', { scope: 'col', t: 'col.vmid' }),
        h('th', { scope: 'col', t: 'col.status' }),
        h('th', { scope: 'col', t: 'col.name' }),
        h('th', { scope: 'col', t: 'col.type' }),
        h('th', { scope: 'col', class: 'num', t: 'col.diskSize' }),
      ),
    ),
    h('tbody', {}, guestRows),
  );

  const excludeField = field(p, 'exclude', 'form.exclude', exclude, 'form.excludeHint');
  function syncAll() {
    exclude.disabled = !all.checked;
    excludeField.classList.toggle('off', !all.checked);
    for (const box of guestBoxes.values()) box.disabled = all.checked;
    guestTable.classList.toggle('off', all.checked);
    allNote.hidden = !all.checked;
  }
  all.addEventListener('change', syncAll);

  const summary = h('div', { class: 'form-summary' });
  const saveBtn = h('button', { type: 'submit', class: 'primary', t: 'form.save' });
  const cancelBtn = h('button', { type: 'button', t: 'common.cancel', on: { click: () => ctx.navigate('#/jobs') } });
  const title = job ? h('h2', { t: ['form.titleEdit', { id: job.id }] }) : h('h2', { t: 'form.titleNew' });

  const form = h(
    'form',
    { class: 'card job-form', novalidate: true, 'aria-labelledby': 'job-form-title' },
    h(
      'div',
      { class: 'columns' },
      h(
        'div',
        { class: 'col' },
        field(p, 'id', 'form.id', id, 'form.idHint'),
        field(p, 'node', 'form.node', node),
        field(p, 'kind', 'form.kind', kind, 'form.kindHint'),
        field(p, 'from', 'form.from', from, 'form.fromHint'),
        sources,
        field(p, 'store', 'form.store', store, stores.length ? 'form.storeHint' : 'form.noStores'),
        field(p, 'device', 'form.device', device, 'form.deviceHint'),
        field(p, 'objectLockDays', 'form.objectLockDays', objectLockDays, 'form.objectLockDaysHint'),
        groupField(p, 'days', 'form.days', days),
        field(p, 'at', 'form.at', at, 'form.atHint'),
        field(p, 'schedule', 'form.schedule', schedule, 'form.scheduleHint'),
        field(p, 'mode', 'form.mode', mode, 'form.modeHint'),
        field(p, 'remoteStore', 'form.remoteStore', remoteStore, 'form.remoteStoreHint'),
        field(p, 'bwlimit', 'form.bwlimit', bwlimit, 'form.bwlimitHint'),
        landing,
        field(p, 'snapshot', 'form.snapshot', snapshot, 'form.snapshotHint'),
      ),
      h(
        'div',
        { class: 'col' },
        field(p, 'mailto', 'form.mailto', mailto, 'form.mailtoHint'),
        ...hook.fields,
        h(
          'div',
          { class: 'field check-field', 'data-field': 'all' },
          h('span'),
          h(
            'div',
            { class: 'control' },
            all,
            h('label', { for: `${p}-all`, t: 'form.all' }),
            h('p', { class: 'field-error', id: `${p}-all-error`, hidden: true }),
          ),
        ),
        excludeField,
        field(p, 'keep', 'form.keep', keep, 'form.keepHint'),
        field(p, 'fullEvery', 'form.fullEvery', fullEvery, 'form.fullEveryHint'),
        field(p, 'scriptBefore', 'form.scriptBefore', scriptBefore, 'form.scriptHint'),
        field(p, 'scriptAfter', 'form.scriptAfter', scriptAfter, 'form.scriptHint'),
        field(p, 'keyFile', 'form.keyFile', keyFile, 'form.keyFileHint'),
        field(p, 'passphraseFile', 'form.passphraseFile', passphraseFile, 'form.passphraseFileHint'),
        h(
          'div',
          { class: 'field check-field', 'data-field': 'bootTest' },
          h('span'),
          h(
            'div',
            { class: 'control' },
            bootTest,
            h('label', { for: `${p}-bootTest`, t: 'form.bootTest' }),
            h('p', { class: 'field-error', id: `${p}-bootTest-error`, hidden: true }),
          ),
        ),
        field(p, 'bootTestExpect', 'form.bootTestExpect', bootTestExpect, 'form.bootTestExpectHint'),
        h(
          'div',
          { class: 'field check-field', 'data-field': 'enabled' },
          h('span'),
          h(
            'div',
            { class: 'control' },
            enabled,
            h('label', { for: `${p}-enabled`, t: 'form.enabled' }),
            h('p', { class: 'field-error', id: `${p}-enabled-error`, hidden: true }),
          ),
        ),
      ),
    ),
    groupField(p, 'vmid', 'form.guests', h('div', { class: 'table-wrap' }, allNote, guestTable)),
    summary,
    h('div', { class: 'buttons' }, cancelBtn, saveBtn),
  );
  all.id = `${p}-all`;
  enabled.id = `${p}-enabled`;
  bootTest.id = `${p}-bootTest`;
  title.id = 'job-form-title';
  syncAll();
  const syncMode = () => {
    const sync = kind.value === 'sync';
    from.closest('.field').hidden = !sync;
    from.required = sync;
    for (const el of [mode, snapshot, fullEvery, scriptBefore, scriptAfter, keyFile, passphraseFile]) el.closest('.field').hidden = sync;
    if (sync) mode.value = 'stop';
    const cluster = mode.value === 'cluster';
    for (const el of [bootTest, bootTestExpect]) el.closest('.field').hidden = sync || cluster; // boots from a datastore of this node
    for (const el of [remoteStore, bwlimit]) el.closest('.field').hidden = !cluster;
    store.closest('.field').hidden = cluster;
    landing.hidden = !cluster;
    store.required = !cluster;
    remoteStore.required = cluster;
    const bucket = toS3() && !cluster; // an S3 datastore here: no external disk, and Object Lock days may be set
    device.closest('.field').hidden = bucket;
    objectLockDays.closest('.field').hidden = !bucket || sync;
  };
  mode.addEventListener('change', syncMode);
  store.addEventListener('change', syncMode);
  kind.addEventListener('change', syncMode);
  syncMode();

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    summary.replaceChildren();
    const fields = {
      node: node.value.trim() || undefined,
      store: mode.value === 'cluster' ? remoteStore.value.trim() : store.value,
      bwlimit: mode.value === 'cluster' && bwlimit.value !== '' ? Number(bwlimit.value) : undefined,
      device: (!device.closest('.field').hidden && device.value.trim()) || undefined,
      objectLockDays: !objectLockDays.closest('.field').hidden && objectLockDays.value !== '' ? Number(objectLockDays.value) : undefined,
      days: WEEKDAYS.filter((d) => dayBoxes[d].checked),
      at: at.value.trim() || (schedule.value.trim() ? undefined : ''), // with a schedule, the start time may stay empty
      schedule: schedule.value.trim() || undefined,
      mode: mode.value,
      kind: kind.value,
      from: kind.value === 'sync' ? from.value.trim() : undefined,
      snapshot: snapshot.value,
      mailto: splitList(mailto.value),
      webhook: hook.value(),
      all: all.checked,
      exclude: all.checked ? splitList(exclude.value) : [],
      vmid: all.checked ? [] : [...guestBoxes].filter(([, box]) => box.checked).map(([vmid]) => vmid),
      keep: keep.value === '' ? undefined : Number(keep.value),
      fullEvery: fullEvery.value === '' ? undefined : Number(fullEvery.value),
      scriptBefore: (kind.value !== 'sync' && scriptBefore.value.trim()) || undefined,
      scriptAfter: (kind.value !== 'sync' && scriptAfter.value.trim()) || undefined,
      encrypt: kind.value !== 'sync' && keyFile.value.trim() ? encryptSetting(keyFile.value.trim(), passphraseFile.value.trim()) : undefined,
      bootTest: !bootTest.closest('.field').hidden && bootTest.checked,
      bootTestExpect: (!bootTest.closest('.field').hidden && bootTest.checked && bootTestExpect.value.trim()) || undefined,
      enabled: enabled.checked,
    };
    saveBtn.disabled = true;
    try {
      const saved = job ? await put(`/jobs/${encodeURIComponent(job.id)}`, { ...job, ...fields }) : await post('/jobs', { id: id.value.trim(), ...fields });
      ctx.navigate('#/jobs', ['jobs.saved', { id: saved.id }]);
    } catch (err) {
      if (err.status === 401) return;
      const name = fieldOfMessage(err.message, FIELDS, ALIASES);
      if (name) setFieldError(form, name, err.message);
      summary.replaceChildren(errorBox(err, 'form.notSaved'));
      const target = name ? form.querySelector(`[data-field="${name}"] input, [data-field="${name}"] select, [data-field="${name}"]`) : null;
      (target ?? summary.firstElementChild)?.focus?.();
    } finally {
      saveBtn.disabled = false;
    }
  });

  form.prepend(title);
  ctx.main.append(...backupHeader('jobs'), form);
  if (!job) id.select();
}
