/**
 * The login limiter and the session lifetimes, on the real server (fastify.inject, real scrypt):
 * attempts are counted before the password is hashed, so a parallel burst from one address gets at
 * most the allowed number of answers (401) and 429 for the rest; a cap over all addresses; a blocked
 * address stays blocked however many others come (the table of addresses is bounded); the client's
 * X-Forwarded-For is believed only from a configured proxy; hashing is queued, not piled onto libuv's
 * thread pool; a web login ends after an absolute lifetime even when used all the time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from '../../dist/server/index.js';
import { LoginLimiter } from '../../dist/server/auth/rate-limit.js';
import { HASH_QUEUE_LIMIT, hashPassword, verifyPassword } from '../../dist/server/auth/secrets.js';
import { createDriver } from '../../dist/guests/hypervisor/index.js';
import { errorCode, makeServerLab, PASSWORD, type ServerLab } from './helpers-server.js';

const XRW = { 'x-requested-with': 'coldvault' };
let lab: ServerLab | undefined;
afterEach(async () => {
  await lab?.close();
  lab = undefined;
});

async function login(l: ServerLab, ip: string, password = 'wrong', headers: Record<string, string> = {}) {
  const res = await l.app.inject({ method: 'POST', url: '/api/v1/login', payload: { password }, headers: { ...XRW, ...headers }, remoteAddress: ip });
  return {
    status: res.statusCode,
    code: errorCode(res),
    message: res.statusCode === 200 ? '' : (res.json().error.message as string),
    retryAfter: res.headers['retry-after'],
    cookie: (res.headers['set-cookie'] as string | undefined)?.split(';')[0],
  };
}

const statuses = (list: Array<{ status: number }>): Record<number, number> =>
  list.reduce<Record<number, number>>((n, r) => ({ ...n, [r.status]: (n[r.status] ?? 0) + 1 }), {});

describe('login limiter', () => {
  it('50 parallel wrong passwords from one address: 5 are checked (401), 45 are refused (429) before hashing', async () => {
    lab = await makeServerLab();
    const l = lab;
    const results = await Promise.all(Array.from({ length: 50 }, () => login(l, '10.1.0.1')));
    expect(statuses(results)).toEqual({ 401: 5, 429: 45 });
    const refused = results.find((r) => r.status === 429)!;
    expect(refused.code).toBe('RATE_LIMITED');
    expect(refused.message).toMatch(/too many login attempts from 10\.1\.0\.1/);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await login(l, '10.1.0.1', PASSWORD)).status).toBe(429); // the right password too, while blocked
    expect((await login(l, '10.1.0.2', PASSWORD)).status).toBe(200);
  });

  it('caps the attempts of all addresses together (loginLimit.global); a success gives its attempt back', async () => {
    lab = await makeServerLab({ config: { loginLimit: { global: 6 } } });
    for (let i = 1; i <= 5; i++) expect((await login(lab, `10.2.0.${i}`)).status).toBe(401);
    expect((await login(lab, '10.2.1.1', PASSWORD)).status).toBe(200); // counted, then given back
    expect((await login(lab, '10.2.0.6')).status).toBe(401);
    const sprayed = await login(lab, '10.2.0.7');
    expect([sprayed.status, sprayed.code]).toEqual([429, 'RATE_LIMITED']);
    expect(sprayed.message).toMatch(/from all addresses/);
    expect((await login(lab, '10.2.0.8', PASSWORD)).status).toBe(429);
    lab.advance(61_000);
    expect((await login(lab, '10.2.0.8', PASSWORD)).status).toBe(200);
  });

  it('a blocked address is not forgotten when many others come; when every tracked one is blocked, a new one waits', () => {
    let now = 1_000_000;
    const limiter = new LoginLimiter(() => now, { perAddress: 2, global: 100_000, maxTracked: 10_000 });
    limiter.begin('10.3.0.1');
    limiter.begin('10.3.0.1');
    expect(() => limiter.begin('10.3.0.1')).toThrow(/too many login attempts from 10\.3\.0\.1/);
    for (let i = 0; i < 20_000; i++) limiter.begin(`10.4.${i >> 8}.${i & 255}`); // twice the table's size
    expect(limiter.tracked).toBe(10_000);
    expect(() => limiter.begin('10.3.0.1')).toThrow(/too many login attempts from 10\.3\.0\.1/);

    const small = new LoginLimiter(() => now, { perAddress: 1, maxTracked: 2 });
    small.begin('a');
    small.begin('b');
    expect(() => small.begin('c')).toThrow(/too many addresses are blocked/);
    expect(() => small.begin('a')).toThrow(/from a/);
    now += 60_001;
    expect(() => small.begin('c')).not.toThrow(); // the window ended: a and b are harmless again and make room
  });

  it('ignores X-Forwarded-For by default: every client behind one proxy shares its limit', async () => {
    lab = await makeServerLab();
    for (let i = 0; i < 5; i++) expect((await login(lab, '127.0.0.1', 'wrong', { 'x-forwarded-for': `203.0.113.${i}` })).status).toBe(401);
    const other = await login(lab, '127.0.0.1', 'wrong', { 'x-forwarded-for': '203.0.113.99' });
    expect(other.status).toBe(429);
    expect(other.message).toMatch(/from 127\.0\.0\.1/);
  });

  it("with trustProxy (the proxy's address) the client is the one X-Forwarded-For names; other peers cannot claim one", async () => {
    lab = await makeServerLab({ config: { trustProxy: ['127.0.0.1'] } });
    for (let i = 0; i < 5; i++) expect((await login(lab, '127.0.0.1', 'wrong', { 'x-forwarded-for': '203.0.113.1' })).status).toBe(401);
    const blocked = await login(lab, '127.0.0.1', 'wrong', { 'x-forwarded-for': '203.0.113.1' });
    expect(blocked.status).toBe(429);
    expect(blocked.message).toMatch(/from 203\.0\.113\.1/);
    expect((await login(lab, '127.0.0.1', PASSWORD, { 'x-forwarded-for': '203.0.113.2' })).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await login(lab, '10.5.0.1', 'wrong', { 'x-forwarded-for': `198.51.100.${i}` })).status).toBe(401);
    const direct = await login(lab, '10.5.0.1', 'wrong', { 'x-forwarded-for': '198.51.100.200' });
    expect(direct.message).toMatch(/from 10\.5\.0\.1/); // not a trusted proxy: its header is ignored
  });

  it('refuses a trustProxy or loginLimit that is not valid, naming the key', async () => {
    lab = await makeServerLab();
    const make = (config: Record<string, unknown>) =>
      createServer({ config: { ...lab!.config, ...config }, state: lab!.state, driver: createDriver({ driver: 'none' }), uiDir: null });
    await expect(make({ trustProxy: 'yes' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/trustProxy/) });
    await expect(make({ trustProxy: ['10.0.0.0/33'] })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(make({ loginLimit: { perAddres: 3 } })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/perAddres/) });
    await expect(make({ sessionMaxHours: 0 })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/sessionMaxHours/) });
  });

  it(`hashes one password at a time; with ${HASH_QUEUE_LIMIT} waiting, more are refused at once (429), not piled up`, async () => {
    const stored = await hashPassword('right');
    const outcomes = await Promise.allSettled(Array.from({ length: HASH_QUEUE_LIMIT + 5 }, () => verifyPassword('wrong', stored)));
    expect(outcomes.filter((o) => o.status === 'fulfilled').map((o) => o.value)).toEqual(Array(HASH_QUEUE_LIMIT).fill(false));
    const refused = outcomes.filter((o) => o.status === 'rejected') as PromiseRejectedResult[];
    expect(refused).toHaveLength(5);
    expect(refused[0]!.reason).toMatchObject({ code: 'RATE_LIMITED', message: expect.stringMatching(/waiting to be checked/) });
    expect(await verifyPassword('right', stored)).toBe(true); // the queue drains
  });
});

describe('web session lifetime', () => {
  const HOUR = 3_600_000;

  it('ends after sessionMaxHours even when used all along, and after sessionIdleHours unused', async () => {
    lab = await makeServerLab({ config: { sessionIdleHours: 1, sessionMaxHours: 3 } });
    const { cookie } = await login(lab, '10.6.0.1', PASSWORD);
    const jobs = () => lab!.api('GET', '/api/v1/jobs', undefined, { cookie: cookie! });
    for (let i = 0; i < 5; i++) {
      lab.advance(0.5 * HOUR); // used every half hour: never idle
      expect((await jobs()).statusCode, `after ${(i + 1) * 0.5} h`).toBe(200);
    }
    lab.advance(0.5 * HOUR + 1000); // 3 h after the login
    const over = await jobs();
    expect(over.statusCode).toBe(401);
    expect(over.json().error.message).toMatch(/expired/);

    const second = await login(lab, '10.6.0.1', PASSWORD);
    lab.advance(HOUR + 1000);
    expect((await lab.api('GET', '/api/v1/jobs', undefined, { cookie: second.cookie! })).statusCode).toBe(401);
  });
});
