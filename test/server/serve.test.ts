/**
 * Listening and the CLI: no plain HTTP beyond loopback, HTTPS with a Secure cookie, `coldvault serve`
 * (prints the generated admin password once, the URL, serves the API and the UI), `coldvault token`.
 * The CLI tests run the built bin/coldvault.js.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, REPO, spawnCli, writeServeConfig } from '../helpers/fixtures.js';
import { checkListen, createServer, isLoopback, parseListen, startServer } from '../../dist/server/index.js';
import { createDriver } from '../../dist/guests/hypervisor/index.js';
import { makeServerLab, PASSWORD, type ServerLab } from './helpers-server.js';

let lab: ServerLab;
let configPath: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  lab = await makeServerLab();
  configPath = writeServeConfig(lab, 'clinode', 'cli-state');
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await lab?.close();
});

describe('where the server listens', () => {
  it('parses HOST:PORT and knows loopback', () => {
    expect(parseListen('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(() => parseListen('8080')).toThrow(/HOST:PORT/);
    expect(() => parseListen('host:70000')).toThrow(/HOST:PORT/);
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].every(isLoopback)).toBe(true);
    expect(['0.0.0.0', '::', '192.168.1.5', 'backup.example.com'].some(isLoopback)).toBe(false);
  });

  it('refuses a non-loopback address without TLS unless allowInsecureListen', async () => {
    expect(() => checkListen('0.0.0.0', {})).toThrow(/refusing to listen on '0.0.0.0' without TLS/);
    expect(() => checkListen('0.0.0.0', { allowInsecureListen: true })).not.toThrow();
    expect(() => checkListen('0.0.0.0', { tls: { cert: 'c', key: 'k' } })).not.toThrow();
    await expect(startServer(lab.app, '0.0.0.0', 0, {})).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect(lab.app.server.listening).toBe(false);
  });

  it('speaks HTTPS with tls: {cert, key}; the session cookie is then Secure', async () => {
    const cert = join(lab.root, 'cert.pem');
    const key = join(lab.root, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], {
      stdio: 'ignore',
    });
    const config = { ...lab.config, tls: { cert, key } };
    const app = await createServer({ config, state: lab.state, driver: createDriver({ driver: 'none' }), uiDir: null });
    try {
      const url = await startServer(app, '127.0.0.1', 0, config);
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
      const res = await new Promise<{ status: number; cookie: string }>((resolve, reject) => {
        const req = request(
          `${url}api/v1/login`,
          { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json', 'x-requested-with': 'coldvault' } },
          (r) => {
            r.resume();
            resolve({ status: r.statusCode ?? 0, cookie: String(r.headers['set-cookie']) });
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify({ password: PASSWORD }));
      });
      expect(res.status).toBe(200);
      expect(res.cookie).toMatch(/HttpOnly; SameSite=Strict; Secure$/);
    } finally {
      await app.close();
    }
  });
});

describe('coldvault serve and coldvault token (built CLI)', () => {
  // serve beyond loopback without `tls` now speaks HTTPS with its own certificate: test/server/tls.test.ts

  async function startServe(): Promise<{ child: ChildProcess; url: string; out: () => string }> {
    const child = spawnCli(['serve', '--config', configPath, '--listen', '127.0.0.1:0']);
    children.push(child);
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    const until = Date.now() + 15_000;
    while (!/on (http:\S+)/.test(out) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    const url = /on (http:\/\/\S+?)\/? /.exec(out)?.[1];
    if (!url) throw new Error(`serve did not start:\n${out}`);
    return { child, url, out: () => out };
  }

  async function stop(child: ChildProcess): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    return exited;
  }

  it('serve prints the generated admin password once and the URL; the API, UI and a CLI-made token work', async () => {
    const first = await startServe();
    const password = /admin password \(shown only now; stored hashed\): (\S+)/.exec(first.out())?.[1];
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect((await fetch(`${first.url}/api/v1/health`)).status).toBe(200);
    const login = await fetch(`${first.url}/api/v1/login`, {
      method: 'POST',
      body: JSON.stringify({ password }),
      headers: { 'content-type': 'application/json', 'x-requested-with': 'coldvault' },
    });
    expect(login.status).toBe(200);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    expect((await fetch(`${first.url}/api/v1/status`, { headers: { cookie } })).status).toBe(200);

    const made = await cli(['token', 'create', 'dash', '--expires', '30', '--config', configPath]);
    expect(made.code, made.stderr).toBe(0);
    const token = made.stdout.split('\n')[0]!;
    expect(token).toMatch(/^cv_[A-Za-z0-9_-]{43}$/);
    const jobs = await fetch(`${first.url}/api/v1/jobs`, { headers: { authorization: `Bearer ${token}` } });
    expect(jobs.status).toBe(200);
    const ui = await fetch(`${first.url}/`);
    const copied = existsSync(join(REPO, 'dist/server/ui/index.html')); // `npm run build` copies the UI; plain tsc does not
    expect(ui.status).toBe(copied ? 200 : 401);
    expect(await stop(first.child)).toBe(0);

    const second = await startServe();
    expect(second.out()).not.toMatch(/admin password/);
    expect(await stop(second.child)).toBe(0);
  });

  it('token list shows name, expiry and last use; token rm removes it; errors are usage errors', async () => {
    const list = await cli(['token', 'list', '--json', '--config', configPath]);
    expect(list.code, list.stderr).toBe(0);
    const tokens = JSON.parse(list.stdout) as Array<{ name: string; expires: string | null; lastUsed: string | null; expired: boolean }>;
    expect(tokens).toEqual([expect.objectContaining({ name: 'dash', expired: false, expires: expect.any(String), lastUsed: expect.any(String) })]);
    expect(list.stdout).not.toMatch(/cv_/);
    expect((await cli(['token', 'create', 'dash', '--config', configPath])).code).toBe(2);
    expect((await cli(['token', 'create', 'bad name', '--config', configPath])).code).toBe(2);
    expect((await cli(['token', 'rm', 'dash', '--config', configPath])).code).toBe(0);
    expect((await cli(['token', 'rm', 'dash', '--config', configPath])).code).toBe(2);
    expect(JSON.parse((await cli(['token', 'list', '--json', '--config', configPath])).stdout)).toEqual([]);
  });
});
