// Pieces the views share: the Backup heading with its Jobs | Restore tabs, error boxes, field errors.
import { get } from '../api.js';
import { h } from '../dom.js';
import { t } from '../i18n.js';

/** <h1>Backup</h1> and the tabs Jobs | Restore (links; aria-current marks the open one). */
export function backupHeader(active) {
  const tab = (id, href, key) =>
    h('li', {}, h('a', { href, t: key, 'aria-current': id === active ? 'page' : undefined, class: id === active ? 'active' : undefined }));
  return [
    h('h1', { t: 'backup.title' }),
    h(
      'nav',
      { class: 'tabs', tAttr: { 'aria-label': 'tabs.label' } },
      h('ul', {}, tab('jobs', '#/jobs', 'tabs.jobs'), tab('restore', '#/restore', 'tabs.restore')),
    ),
  ];
}

/** An alert box for a failed request: an optional lead-in (dictionary key) and the API's message. */
export function errorBox(err, leadKey) {
  return h(
    'div',
    { class: 'form-error', role: 'alert' },
    leadKey ? h('strong', { t: leadKey }) : null,
    leadKey ? ' ' : null,
    h('span', { class: 'message' }, err?.message ?? String(err)),
    err?.code ? h('span', { class: 'code' }, ` (${err.code})`) : null,
  );
}

/**
 * A labelled form field: label, control, hint and a place for the API's error, all tied together
 * with for= / aria-describedby. `name` is the API's field name (errors are matched by it).
 */
export function field(prefix, name, labelKey, control, hintKey) {
  const id = `${prefix}-${name}`;
  control.id = id;
  if (!control.name) control.name = name;
  const hint = hintKey ? h('p', { class: 'hint', id: `${id}-hint`, t: hintKey }) : null;
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  if (hint) control.setAttribute('aria-describedby', hint.id);
  return h('div', { class: 'field', 'data-field': name }, h('label', { for: id, t: labelKey }), h('div', { class: 'control' }, control, hint, error));
}

/** A fieldset-based field (a group of checkboxes, a table) with the same error slot. */
export function groupField(prefix, name, legendKey, content, hintKey) {
  const id = `${prefix}-${name}`;
  const hint = hintKey ? h('p', { class: 'hint', id: `${id}-hint`, t: hintKey }) : null;
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  return h(
    'fieldset',
    { class: 'field group', 'data-field': name, id, 'aria-describedby': hint ? hint.id : undefined },
    h('legend', { t: legendKey }),
    h('div', { class: 'control' }, content, hint, error),
  );
}

export function clearFieldErrors(form) {
  for (const p of form.querySelectorAll('.field-error')) {
    p.hidden = true;
    p.textContent = '';
  }
  for (const el of form.querySelectorAll('[aria-invalid]')) {
    el.removeAttribute('aria-invalid');
    const ids = (el.getAttribute('aria-describedby') ?? '').split(' ').filter((x) => x && !x.endsWith('-error'));
    if (ids.length) el.setAttribute('aria-describedby', ids.join(' '));
    else el.removeAttribute('aria-describedby');
  }
  for (const f of form.querySelectorAll('.field.invalid')) f.classList.remove('invalid');
}

/** Shows a message next to the field named `name`; returns false when the form has no such field. */
export function setFieldError(form, name, message) {
  const box = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
  if (!box) return false;
  box.classList.add('invalid');
  const error = box.querySelector('.field-error');
  error.textContent = message;
  error.hidden = false;
  const control = box.matches('fieldset') ? box : box.querySelector('input, select, textarea');
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    const ids = new Set((control.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean));
    ids.add(error.id);
    control.setAttribute('aria-describedby', [...ids].join(' '));
  }
  return true;
}

/**
 * The form field an API error message is about: schema errors name it (`body/keep must be >= 1`,
 * `must have required property 'store'`), the engine's and the path checks start with it
 * (`at: '25:00' is not ...`, `scriptBefore '/tmp/x' is not inside ...`).
 */
export function fieldOfMessage(message, names, aliases = {}) {
  const text = String(message ?? '');
  const candidates = [];
  const body = /body\/(\w+)/.exec(text);
  if (body) candidates.push(body[1]);
  const required = /required property '(\w+)'/.exec(text);
  if (required) candidates.push(required[1]);
  const lead = /^(?:job '[^']*': )?(\w+)(?::|\s')/.exec(text);
  if (lead) candidates.push(lead[1]);
  for (const [pattern, name] of Object.entries(aliases)) if (new RegExp(pattern).test(text)) candidates.push(name);
  return candidates.find((c) => names.includes(c));
}

export function statusBadge(status) {
  return h('span', { class: `badge status-${status}`, 'data-status': status, t: `status.${status}` });
}

export function showError(container, err, leadKey) {
  container.replaceChildren(errorBox(err, leadKey));
  container.hidden = false;
}

/**
 * The attached external disks as suggestions for the device field (UUID= where known: it survives
 * reboots). GET /devices mounts nothing, so it does not say whose datastore a disk holds.
 */
export function offerDevices(listId) {
  document.getElementById(listId)?.remove();
  const list = h('datalist', { id: listId });
  document.body.append(list);
  get('/devices')
    .then((devices) => {
      for (const d of devices) {
        const text = [d.path, d.fstype, d.label].filter(Boolean).join(' · ');
        list.append(h('option', { value: d.uuid ? `UUID=${d.uuid}` : d.path }, text));
      }
    })
    .catch(() => undefined);
}
