/**
 * `coldvault dashboard` for real, in an 80x24 tmux pane (new-session -d -x 80 -y 24, send-keys,
 * capture-pane -p), against a real HTTP server on port 0.
 *
 * The server is test/dashboard/fake-api.ts, a STAND-IN for `coldvault serve`'s API until the server's
 * tests can drive the real one: it serves the API v1 contract (status, jobs, backups, tasks, task log)
 * from fixture JSON and advances a running backup at every status poll (48 MiB read, 16 MiB written
 * per 1 s of elapsed time). Swap it for the real server by giving these tests another `url`.
 *
 * Runs the built CLI (bin/coldvault.js -> dist/): `npm run build` first. NCURSES_NO_UTF8_ACS=1 makes
 * blessed draw borders as Unicode rather than ACS, so the captured text reads as the screen looks.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeApi, TASK_ID, type FakeApi } from './fake-api.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/coldvault.js');
const TOKEN = 'test-token-1';
const SOCKET = `coldvault-dashboard-${process.pid}`;
const ENV = { ...process.env, LANG: 'C.UTF-8', NCURSES_NO_UTF8_ACS: '1', TERM: 'xterm-256color' };

const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', SOCKET, ...args], { env: ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const capture = (session: string): string => tmux('capture-pane', '-p', '-t', session).replace(/\n$/, '');
/** The pane's text, or `last` when the session ended between the look and the capture (after a quit). */
const captureOr = (session: string, last: string): string => {
  try {
    return capture(session);
  } catch {
    return last;
  }
};
const alive = (session: string): boolean => {
  try {
    tmux('has-session', '-t', session);
    return true;
  } catch {
    return false;
  }
};

/** Polls `check` until it returns a value; fails with the last screen after `ms`. */
async function waitFor<T>(session: string, check: (screen: string) => T | undefined | false, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  let screen = '';
  for (;;) {
    screen = alive(session) ? captureOr(session, screen) : screen;
    const result = check(screen);
    if (result !== undefined && result !== false) return result;
    if (Date.now() > until) throw new Error(`timed out; the screen:\n${screen}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

let work: string;
let api: FakeApi;
let n = 0;

/** Starts the dashboard in a detached 80x24 pane; its exit code lands in the returned file. */
function startDashboard(args: string[], env: Record<string, string> = {}): { session: string; exitFile: string } {
  const session = `dash${++n}`;
  const exitFile = join(work, `${session}.exit`);
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = `${Object.entries(env)
    .map(([k, v]) => `${k}=${quote(v)} `)
    .join('')}node ${quote(BIN)} dashboard ${args.map(quote).join(' ')}; echo $? > ${quote(exitFile)}`;
  tmux('new-session', '-d', '-x', '80', '-y', '24', '-s', session, command);
  return { session, exitFile };
}

async function quit(session: string, exitFile: string, key = 'q'): Promise<string> {
  tmux('send-keys', '-t', session, key);
  return waitFor(session, () => !alive(session) && existsSync(exitFile) && readFileSync(exitFile, 'utf8').trim(), 5000);
}

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  work = mkdtempSync(join(tmpdir(), 'coldvault-dashboard-'));
  api = await startFakeApi({ token: TOKEN });
});

afterEach(() => {
  // sessions left by a failed test
  try {
    tmux('kill-server');
  } catch {
    // no server: every session ended
  }
});

afterAll(async () => {
  // tmux -L leaves its socket file behind after kill-server
  rmSync(join(`/tmp/tmux-${process.getuid?.() ?? 0}`, SOCKET), { force: true });
  await api?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('coldvault dashboard in an 80x24 tmux pane', () => {
  it('shows a running backup: throughput chart in MiB/s, gauge %, rotation table; survives the API going away; q quits', async () => {
    const { session, exitFile } = startDashboard(['--url', api.url, '--interval', '0.4'], { COLDVAULT_TOKEN: TOKEN });

    // the chart's label carries the newest rates: 48 MiB read / 16 MiB written per elapsed second
    const screen = await waitFor(session, (s) => /Throughput MiB\/s\s+read 48\.0\s+write 16\.0/.test(s) && /^│103 /m.test(s) && s);
    const lines = screen.split('\n');
    expect(lines).toHaveLength(24);
    expect(lines.every((l) => l.length <= 80)).toBe(true);

    // the chart: its y axis and a drawn line (braille dots) in the left 48 columns
    const chart = lines
      .slice(0, 10)
      .map((l) => l.slice(0, 48))
      .join('\n');
    expect(chart).toMatch(/[⠀-⣿]{10,}/);
    expect(chart).toMatch(/^│\s*\d+\s*⡇/m);

    // the gauge: the running task, its bytes and its percentage in the right column
    const right = lines
      .slice(0, 6)
      .map((l) => l.slice(48))
      .join('\n');
    expect(right).toContain('backup daily scsi0');
    expect(right).toMatch(/\d+(\.\d)? (MiB|GiB) of 4\.0 GiB/);
    const percent = Number(/│\s+(\d{1,3})%\s+│/.exec(right)?.[1]);
    expect(percent).toBeGreaterThan(0);
    expect(percent).toBeLessThanOrEqual(100);

    // datastore usage
    expect(screen).toMatch(/usb1 \[#+\.+\]\s+30%/);
    expect(screen).toContain('free 700 GiB');

    // the rotation table: guest id, kept / keep N of the covering job, dedup ratio
    expect(screen).toMatch(/Guest\s+Store\s+Kept\s+Oldest\s+Newest\s+Logical\s+Stored\s+Dedup/);
    expect(screen).toMatch(/^│101\s+usb1\s+3\/3\s+25-02-2\d \d\d:\d\d\s+25-02-2\d \d\d:\d\d\s+24\.0 GiB\s+2\.5 GiB\s+9\.6x/m);
    expect(screen).toMatch(/^│102\s+usb1\s+2\/3\s.*12\.8x/m);
    expect(screen).toMatch(/^│103\s+usb1\s+4\/5\s.*11\.6x/m);

    // the log tail of the running task
    expect(screen).toContain(`log ${TASK_ID}`);
    expect(screen).toMatch(/\d\d:\d\d:\d\d scsi0: \d+% read/);

    // the gauge moves on with the task
    await waitFor(session, (s) => {
      const p = Number(
        /│\s+(\d{1,3})%\s+│/.exec(
          s
            .split('\n')
            .slice(0, 6)
            .map((l) => l.slice(48))
            .join('\n'),
        )?.[1],
      );
      return p > percent;
    });

    // every request carried the token; every route of the contract was used
    expect(api.refused).toBe(0);
    for (const route of [
      '/api/v1/status',
      '/api/v1/jobs',
      '/api/v1/backups?store=usb1',
      '/api/v1/overview?days=1',
      '/api/v1/tasks?limit=',
      `/api/v1/tasks/${TASK_ID}/log?from=`,
    ]) {
      expect(
        api.requests.some((r) => r.startsWith(`GET ${route}`)),
        route,
      ).toBe(true);
    }

    // the API going away is an error line in the log box, not a crash
    await api.close();
    await waitFor(session, (s) => /API ECONNREFUSED \(status/.test(s));
    expect(alive(session)).toBe(true);

    expect(await quit(session, exitFile)).toBe('0');
    api = await startFakeApi({ token: TOKEN });
  });

  it('refused requests (a wrong token) show in the log box; Ctrl-C quits', async () => {
    const { session, exitFile } = startDashboard(['--url', api.url, '--token', 'wrong', '--interval', '0.4']);
    const screen = await waitFor(session, (s) => s.includes('API 401 UNAUTHORIZED: a valid token is required') && s);
    expect(screen).toContain('no task running');
    expect(screen).toContain('(status, tasks');
    expect(api.refused).toBeGreaterThan(0);
    expect(await quit(session, exitFile, 'C-c')).toBe('0');
  });

  it('g switches the table to the guests (last result, time, downtime, flags) and back', async () => {
    const { session, exitFile } = startDashboard(['--url', api.url, '--token', TOKEN, '--interval', '0.4']);
    await waitFor(session, (s) => /^│103 /m.test(s) && s.includes('(q quits, g guests)'));
    tmux('send-keys', '-t', session, 'g');
    const screen = await waitFor(session, (s) => /^│104 /m.test(s) && s.includes('guests  3 flagged') && s);
    expect(screen).toContain('(q quits, g rotation)');
    expect(screen).toMatch(/Guest\s+Name\s+Last\s+Time\s+Down\s+Flags/);
    expect(screen).toMatch(/^│101\s+web\s+ok\s+25-02-26 \d\d:03\s+42s\s+-\s*│/m);
    expect(screen).toMatch(/^│102\s+db\s+FAILED\s+25-02-27 \d\d:05\s+2s\s+FAILED, overdue\s*│/m);
    expect(screen).toMatch(/^│103\s+mail\s+ok\s+25-02-23 \d\d:04\s+-\s+overdue\s*│/m);
    expect(screen).toMatch(/^│104\s+scratch\s+never\s+-\s+-\s+NOT BACKED UP\s*│/m);
    expect(screen.split('\n').every((l) => l.length <= 80)).toBe(true);
    tmux('send-keys', '-t', session, 'g');
    await waitFor(session, (s) => /^│101\s+usb1\s+3\/3\s/m.test(s));
    expect(await quit(session, exitFile)).toBe('0');
  });

  it('a tall pane (100x40) shows the guest table and the rotation table together', async () => {
    const { session, exitFile } = startDashboard(['--url', api.url, '--token', TOKEN, '--interval', '0.4']);
    tmux('resize-window', '-t', session, '-x', '100', '-y', '40');
    const screen = await waitFor(session, (s) => s.split('\n').length === 40 && /^│104\s+scratch\s+never/m.test(s) && /^│103\s+usb1\s+4\/5\s/m.test(s) && s);
    const lines = screen.split('\n');
    const guestsAt = lines.findIndex((l) => l.includes('guests  3 flagged'));
    const rotationAt = lines.findIndex((l) => l.includes('rotation  pve1'));
    expect(guestsAt).toBeGreaterThan(0);
    expect(rotationAt).toBeGreaterThan(guestsAt);
    expect(screen).not.toContain('g guests');
    expect(await quit(session, exitFile)).toBe('0');
  });

  it('degrades in a 60x16 pane: no chart (rates in the gauge label), the table keeps its rows', async () => {
    const { session, exitFile } = startDashboard(['--url', api.url, '--token', TOKEN, '--interval', '0.4']);
    await waitFor(session, (s) => /Throughput MiB\/s\s+read 48\.0/.test(s));
    tmux('resize-window', '-t', session, '-x', '60', '-y', '16');
    const screen = await waitFor(session, (s) => s.split('\n')[0]!.length <= 60 && /r 48\.0 w 16\.0 MiB\/s/.test(s) && s);
    expect(screen).not.toContain('Throughput');
    expect(screen).toMatch(/^│101\s+3\/3\s/m);
    expect(screen).toMatch(/^│102\s+2\/3\s/m);
    expect(screen).toContain('usb1');
    expect(await quit(session, exitFile)).toBe('0');
  });
});
