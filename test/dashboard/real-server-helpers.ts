/**
 * The REAL `coldvault serve` for the dashboard's tmux test (real-server.test.ts): a temp folder with a
 * guests dir (guest 101, one raw disk), a `local` storage, a datastore `main` made by `coldvault
 * datastore init`, a state dir and a config file (driver `none`); the built CLI serving it on
 * 127.0.0.1 (port 0: the kernel picks a free one, serve prints the URL), an API token from `coldvault
 * token create`, and small HTTP helpers for the API. And the tmux helpers the test drives the
 * dashboard with (as tmux.test.ts: an 80x24 detached session on a private socket).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cli, CLI, makeLab, writeGuest, writeServeConfig, type Lab } from '../helpers/fixtures.js';

export interface RealServer {
  lab: Lab;
  configPath: string;
  url: string;
  token: string;
  /** serve's stdout and stderr so far */
  output(): string;
  /** a JSON request with the token; throws on a non-2xx answer */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** SIGTERM, then SIGKILL after 10 s; resolves with the exit code (null when killed) */
  stop(): Promise<number | null>;
}

export interface RealServerOptions {
  /** the config's zstd level (default 1) */
  zstdLevel?: number;
  /** writes guest 101's first disk image before serve starts */
  image: (path: string) => void;
}

export async function startRealServer(options: RealServerOptions): Promise<RealServer> {
  const lab = makeLab('coldvault-dash-real-');
  writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
  options.image(join(lab.storageDir, 'images', '101', 'vm-101-disk-0.raw'));
  const init = await cli(['datastore', 'init', lab.storeDir]);
  if (init.code !== 0) throw new Error(`datastore init failed: ${init.stderr}`);
  const configPath = writeServeConfig(lab, 'dashnode', 'state', { zstdLevel: options.zstdLevel ?? 1 });

  const child = spawn(process.execPath, [CLI, 'serve', '--config', configPath, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, COLDVAULT_ADMIN_PASSWORD: 'dashboard-test-password' },
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async (): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };

  try {
    const url = await waitForUrl(child, () => out);
    const made = await cli(['token', 'create', 'dashboard', '--config', configPath]);
    if (made.code !== 0) throw new Error(`token create failed: ${made.stderr}`);
    const token = made.stdout.split('\n')[0]!.trim();
    const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return (text ? JSON.parse(text) : undefined) as T;
    };
    return { lab, configPath, url, token, output: () => out, api, stop };
  } catch (err) {
    await stop();
    lab.cleanup();
    throw err;
  }
}

async function waitForUrl(child: ChildProcess, out: () => string): Promise<string> {
  const until = Date.now() + 20_000;
  for (;;) {
    const url = /web UI and API on (http:\/\/\S+?)\/? /.exec(out())?.[1];
    if (url) return url;
    if (child.exitCode !== null || Date.now() > until) throw new Error(`coldvault serve did not start:\n${out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface TaskJson {
  id: string;
  status: string;
  [k: string]: unknown;
}

/** Polls a task until it is no longer running; returns it. */
export async function waitTask(server: RealServer, taskId: string, timeoutMs = 60_000): Promise<TaskJson> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const task = await server.api<TaskJson>('GET', `/api/v1/tasks/${taskId}`);
    if (task.status !== 'running') return task;
    if (Date.now() > until) throw new Error(`task ${taskId} still running after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- tmux ---------------------------------------------------------------------------------------

/**
 * A private tmux server for one test file, its socket a file in `dir` (the test's temp dir, so no
 * socket is left in /tmp/tmux-UID); `kill()` ends it and every session in it.
 */
export class Tmux {
  readonly socket: string;
  private readonly env = { ...process.env, LANG: 'C.UTF-8', NCURSES_NO_UTF8_ACS: '1', TERM: 'xterm-256color' };

  constructor(dir: string) {
    this.socket = join(dir, 'tmux.sock');
  }

  run(...args: string[]): string {
    return execFileSync('tmux', ['-S', this.socket, ...args], { env: this.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  capture(session: string): string {
    return this.run('capture-pane', '-p', '-t', session).replace(/\n$/, '');
  }

  /** The screen, or undefined when the session has ended (also between a look and the capture). */
  captureIfAlive(session: string): string | undefined {
    try {
      return this.capture(session);
    } catch {
      return undefined;
    }
  }

  alive(session: string): boolean {
    try {
      this.run('has-session', '-t', session);
      return true;
    } catch {
      return false;
    }
  }

  /** Starts `node bin/coldvault.js dashboard ARGS` in a detached 80x24 session; its exit code lands in `exitFile`. */
  startDashboard(session: string, args: string[], exitFile: string): void {
    const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
    const command = `node ${quote(CLI)} dashboard ${args.map(quote).join(' ')}; echo $? > ${quote(exitFile)}`;
    this.run('new-session', '-d', '-x', '80', '-y', '24', '-s', session, command);
  }

  /** Polls `check` with the screen until it returns a value; fails with the last screen after `ms`. */
  async waitFor<T>(session: string, check: (screen: string) => T | undefined | false, ms = 15_000): Promise<T> {
    const until = Date.now() + ms;
    let screen = '';
    for (;;) {
      screen = this.captureIfAlive(session) ?? screen;
      const result = check(screen);
      if (result !== undefined && result !== false) return result;
      if (Date.now() > until) throw new Error(`timed out; the screen:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Sends `key`, waits for the session to end; resolves with the exit code the dashboard left. */
  async quit(session: string, exitFile: string, key = 'q'): Promise<string> {
    this.run('send-keys', '-t', session, key);
    return this.waitFor(session, () => !this.alive(session) && existsSync(exitFile) && readFileSync(exitFile, 'utf8').trim(), 10_000);
  }

  kill(): void {
    try {
      this.run('kill-server');
    } catch {
      // no server: no session left
    }
    rmSync(this.socket, { force: true });
  }
}
