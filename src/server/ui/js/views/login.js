// Login: the admin password -> POST /api/v1/login (the session cookie comes back HttpOnly).
import { post } from '../api.js';
import { h } from '../dom.js';

export async function loginView(ctx) {
  const password = h('input', { id: 'login-password', type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const error = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary', t: 'login.submit' });
  const form = h(
    'form',
    { class: 'card login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title', t: 'login.title' }),
    h('p', { t: 'login.intro' }),
    h('div', { class: 'field' }, h('label', { for: 'login-password', t: 'login.password' }), h('div', { class: 'control' }, password)),
    error,
    h('div', { class: 'buttons' }, submit),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      await post('/login', { password: password.value });
      await ctx.loggedIn();
    } catch (err) {
      error.replaceChildren(err.code === 'LOGIN_FAILED' ? h('span', { t: 'login.failed' }) : h('span', {}, err.message));
      error.hidden = false;
      password.select();
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  ctx.main.append(form);
  password.focus();
}
