/** Auth: tokens, sessions, login rate limit, CSRF header, and a 401 on every route but health without them. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAdminPassword } from '../../dist/server/index.js';
import { openStateDb } from '../../dist/jobs/index.js';
import { join } from 'node:path';
import { ALL_ROUTES, errorCode, makeServerLab, PASSWORD, type ServerLab } from './helpers-server.js';

let lab: ServerLab;
beforeAll(async () => {
  lab = await makeServerLab();
});
afterAll(async () => lab?.close());

const HOUR = 3_600_000;
const XRW = { 'x-requested-with': 'coldvault' };

async function login(
  ip = '10.0.0.1',
  password = PASSWORD,
  headers: Record<string, string> = XRW,
): Promise<{ status: number; cookie?: string; setCookie?: string; retryAfter?: string }> {
  const res = await lab.app.inject({ method: 'POST', url: '/api/v1/login', payload: { password }, headers, remoteAddress: ip });
  const setCookie = res.headers['set-cookie'] as string | undefined;
  return { status: res.statusCode, setCookie, cookie: setCookie?.split(';')[0], retryAfter: res.headers['retry-after'] };
}

const withCookie = (cookie: string, extra: Record<string, string> = {}): Record<string, string> => ({ cookie, ...extra });

describe('authentication', () => {
  it('health needs no auth', async () => {
    const res = await lab.app.inject({ method: 'GET', url: '/api/v1/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ ok: true, version: expect.any(String) });
  });

  it('every other route is 401 without a token or session, with a JSON error code', async () => {
    const refused: string[] = [];
    for (const route of ALL_ROUTES.filter((r) => r !== 'GET /api/v1/health' && r !== 'POST /api/v1/login')) {
      const [method, path] = route.split(' ') as [string, string];
      const res = await lab.app.inject({
        method: method as 'GET',
        url: path.replace('{id}', 'x1'),
        payload: method === 'GET' || method === 'DELETE' ? undefined : {},
      });
      if (res.statusCode === 401 && errorCode(res) === 'UNAUTHORIZED') refused.push(route);
    }
    expect(refused).toHaveLength(ALL_ROUTES.length - 2);
  });

  it('a wrong or malformed token is refused, even with a valid cookie beside it', async () => {
    for (const authorization of ['Bearer cv_nope', 'Bearer ', 'Basic YWRtaW46c2VjcmV0', `Bearer ${lab.token}x`]) {
      const res = await lab.api('GET', '/api/v1/status', undefined, { authorization });
      expect(res.statusCode, authorization).toBe(401);
    }
    const { cookie } = await login('10.0.0.9');
    const res = await lab.api('GET', '/api/v1/jobs', undefined, { authorization: 'Bearer cv_wrong', cookie: cookie! });
    expect(res.statusCode).toBe(401);
    expect((await lab.api('GET', '/api/v1/jobs', undefined, { cookie: cookie! })).statusCode).toBe(200);
  });

  it('a token works until it expires; its last use is recorded', async () => {
    const { token } = lab.tokens.create('short', { expiresDays: 1 });
    expect((await lab.api('GET', '/api/v1/jobs', undefined, { authorization: `Bearer ${token}` })).statusCode).toBe(200);
    const first = lab.tokens.list().find((t) => t.name === 'short')?.lastUsed;
    expect(first).not.toBeNull();
    // recorded to the minute: a push's many requests do not write the state database each
    lab.advance(30_000);
    expect((await lab.api('GET', '/api/v1/jobs', undefined, { authorization: `Bearer ${token}` })).statusCode).toBe(200);
    expect(lab.tokens.list().find((t) => t.name === 'short')?.lastUsed).toBe(first);
    lab.advance(31_000);
    expect((await lab.api('GET', '/api/v1/jobs', undefined, { authorization: `Bearer ${token}` })).statusCode).toBe(200);
    expect(Date.parse(lab.tokens.list().find((t) => t.name === 'short')?.lastUsed ?? '') - Date.parse(first ?? '')).toBeGreaterThanOrEqual(61_000);
    lab.advance(-61_000);
    lab.advance(25 * HOUR);
    try {
      const res = await lab.api('GET', '/api/v1/jobs', undefined, { authorization: `Bearer ${token}` });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.message).toMatch(/expired/);
      expect(lab.tokens.list().find((t) => t.name === 'short')?.expired).toBe(true);
    } finally {
      lab.advance(-25 * HOUR);
    }
  });
});

describe('login and sessions', () => {
  it('the right password sets an HttpOnly SameSite=Strict cookie (not Secure without TLS) that opens the API', async () => {
    const { status, setCookie, cookie } = await login('10.0.1.1');
    expect(status).toBe(200);
    expect(setCookie).toMatch(/^coldvault_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict$/);
    const res = await lab.api('GET', '/api/v1/status', undefined, withCookie(cookie!));
    expect(res.statusCode).toBe(200);
  });

  it('a wrong password is 401 LOGIN_FAILED; an unknown body field is 400', async () => {
    const res = await lab.app.inject({ method: 'POST', url: '/api/v1/login', payload: { password: 'nope' }, headers: XRW, remoteAddress: '10.0.1.2' });
    expect(res.statusCode).toBe(401);
    expect(errorCode(res)).toBe('LOGIN_FAILED');
    const extra = await lab.app.inject({
      method: 'POST',
      url: '/api/v1/login',
      payload: { password: PASSWORD, user: 'root' },
      headers: XRW,
      remoteAddress: '10.0.1.2',
    });
    expect(extra.statusCode).toBe(400);
    expect(errorCode(extra)).toBe('INVALID_REQUEST');
  });

  it('a session ends 12 h after its last use at the latest (default sessionIdleHours and sessionMaxHours)', async () => {
    const { cookie } = await login('10.0.1.3');
    lab.advance(11 * HOUR);
    try {
      expect((await lab.api('GET', '/api/v1/jobs', undefined, withCookie(cookie!))).statusCode).toBe(200);
      lab.advance(12 * HOUR + 1000);
      const res = await lab.api('GET', '/api/v1/jobs', undefined, withCookie(cookie!));
      expect(res.statusCode).toBe(401);
      expect(res.json().error.message).toMatch(/expired/);
    } finally {
      lab.advance(-(23 * HOUR + 1000));
    }
  });

  it('logout ends the session and clears the cookie', async () => {
    const { cookie } = await login('10.0.1.4');
    const out = await lab.api('POST', '/api/v1/logout', undefined, withCookie(cookie!, XRW));
    expect(out.statusCode).toBe(200);
    expect(out.headers['set-cookie']).toMatch(/^coldvault_session=; .*Max-Age=0/);
    expect((await lab.api('GET', '/api/v1/jobs', undefined, withCookie(cookie!))).statusCode).toBe(401);
    expect((await lab.api('POST', '/api/v1/logout', undefined, {})).statusCode).toBe(401);
  });

  it('sessions are stored in the state database as hashes only', async () => {
    const { cookie } = await login('10.0.1.5');
    const row = lab.state.db.prepare('SELECT count(*) AS n FROM web_sessions').get() as { n: number };
    expect(row.n).toBeGreaterThan(0);
    const stored = lab.state.db.prepare('SELECT hash FROM web_sessions').all() as Array<{ hash: string }>;
    expect(stored.map((s) => s.hash)).not.toContain(cookie!.split('=')[1]);
  });
});

describe('CSRF: state-changing cookie requests need X-Requested-With: coldvault', () => {
  const job = (id: string) => ({ id, store: 'main', vmid: ['101'] });

  it('refuses a cookie POST / PUT / DELETE without the header, accepts it with the header', async () => {
    const { cookie } = await login('10.0.2.1');
    const bare = await lab.api('POST', '/api/v1/jobs', job('csrf1'), withCookie(cookie!));
    expect(bare.statusCode).toBe(403);
    expect(errorCode(bare)).toBe('CSRF_CHECK_FAILED');
    const wrong = await lab.api('POST', '/api/v1/jobs', job('csrf1'), withCookie(cookie!, { 'x-requested-with': 'XMLHttpRequest' }));
    expect(wrong.statusCode).toBe(403);
    expect((await lab.api('POST', '/api/v1/jobs', job('csrf1'), withCookie(cookie!, XRW))).statusCode).toBe(201);
    expect((await lab.api('DELETE', '/api/v1/jobs/csrf1', undefined, withCookie(cookie!))).statusCode).toBe(403);
    expect((await lab.api('DELETE', '/api/v1/jobs/csrf1', undefined, withCookie(cookie!, XRW))).statusCode).toBe(204);
  });

  it('bearer requests need no header; login needs it', async () => {
    expect((await lab.api('POST', '/api/v1/jobs', job('csrf2'))).statusCode).toBe(201);
    expect((await lab.api('DELETE', '/api/v1/jobs/csrf2')).statusCode).toBe(204);
    const res = await login('10.0.2.2', PASSWORD, {});
    expect(res.status).toBe(403);
  });
});

describe('login rate limit', () => {
  it('5 failures a minute per address, then 429 with Retry-After (even for the right password); other addresses are not affected', async () => {
    const ip = '10.0.3.1';
    for (let i = 0; i < 5; i++) expect((await login(ip, `wrong${i}`)).status).toBe(401);
    const blocked = await login(ip, 'wrong');
    expect(blocked.status).toBe(429);
    expect(Number(blocked.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(blocked.retryAfter)).toBeLessThanOrEqual(60);
    const right = await login(ip);
    expect(right.status).toBe(429);
    expect((await login('10.0.3.2')).status).toBe(200);
    lab.advance(61_000);
    try {
      expect((await login(ip)).status).toBe(200);
    } finally {
      lab.advance(-61_000);
    }
  });
});

describe('the admin password', () => {
  it('is set once: from the environment, else generated; later starts keep it', async () => {
    const db = openStateDb(join(lab.root, 'state2'));
    try {
      const first = await ensureAdminPassword(db);
      expect(first.generated).toMatch(/^[A-Za-z0-9_-]{24}$/);
      expect(await ensureAdminPassword(db, 'other')).toEqual({});
      const row = db.prepare("SELECT value FROM server_settings WHERE key = 'admin-password'").get() as { value: string };
      expect(row.value).toMatch(/^scrypt\$32768\$8\$1\$/);
      expect(row.value).not.toContain(first.generated);
    } finally {
      db.close();
    }
  });
});
