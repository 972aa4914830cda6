// The confirm dialog: a real <dialog> (modal, focus kept inside, Escape cancels). Resolves true only
// when the OK button was pressed. Cancel has the focus first, so Enter alone never confirms.
import { h } from './dom.js';

export function confirmDialog({ message, ok = 'common.ok', okClass = 'primary' }) {
  return new Promise((resolve) => {
    const [key, args] = Array.isArray(message) ? message : [message];
    const cancelBtn = h('button', { type: 'button', value: 'cancel', t: 'common.cancel' });
    const okBtn = h('button', { type: 'button', value: 'ok', class: okClass, t: ok });
    const text = h('p', { id: 'confirm-text', t: [key, args] });
    const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-text' }, text, h('div', { class: 'buttons' }, cancelBtn, okBtn));
    let answer = false;
    okBtn.addEventListener('click', () => {
      answer = true;
      dialog.close('ok');
    });
    cancelBtn.addEventListener('click', () => dialog.close('cancel'));
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancelBtn.focus();
  });
}
