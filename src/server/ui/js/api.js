// The JSON API with the session cookie. Every request carries `X-Requested-With: coldvault` (the
// server's CSRF rule for state-changing requests with a session). A 401 outside the login sends the
// app to the login page (onUnauthorized).
export const API = '/api/v1';
const CSRF = { 'X-Requested-With': 'coldvault' };

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

let unauthorized = () => {};
export function onUnauthorized(fn) {
  unauthorized = fn;
}

export async function api(method, path, body) {
  const headers = { ...CSRF, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(API + path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, 'NETWORK', err instanceof Error ? err.message : String(err));
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new ApiError(res.status, data?.error?.code ?? `HTTP_${res.status}`, data?.error?.message ?? `${res.status} ${res.statusText}`);
    if (res.status === 401 && path !== '/login') unauthorized(err);
    throw err;
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);
export const put = (path, body) => api('PUT', path, body);
export const del = (path) => api('DELETE', path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
