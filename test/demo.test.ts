/**
 * The README's first command stays working: the demo (scripts/demo.mjs, without its final `serve`)
 * backs up the demo guest, lists, verifies and restores it under a new ID with identical disks, and a
 * second run (the next night) stores only the changed region.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/fixtures.js';

describe('npm run demo', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cv-demo-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const demo = (): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, [join(REPO, 'scripts', 'demo.mjs'), '--no-serve'], {
      env: { ...process.env, COLDVAULT_DEMO_DIR: dir },
      encoding: 'utf8',
      timeout: 120_000,
    });

  it('backs up, verifies and restores the demo guest; the second night stores one region', () => {
    const first = demo();
    expect(first.status, String(first.stderr)).toBe(0);
    expect(String(first.stdout)).toMatch(/vm-101-disk-0.raw -> 201\/vm-201-disk-0.raw: identical/);
    expect(String(first.stdout)).toMatch(/verify ok/);
    const second = demo();
    expect(second.status, String(second.stderr)).toBe(0);
    expect(String(second.stderr)).toMatch(/archive size: 4\.00 MiB new in the store \(1 chunks\)/);
    expect(String(second.stdout)).toMatch(/-> 202\/vm-202-disk-0.raw: identical/);
  });
});

describe('npm run demo, served', () => {
  // The served demo as a newcomer meets it: the web UI/API on the demo's state, the admin password
  // printed, a job "demo" ready for "Start now"; with QEMU here (CI installs it), guest 102 is the
  // tiny real Linux guest, which the job shuts down over ACPI, backs up and starts again.
  const dir = mkdtempSync(join(tmpdir(), 'cv-demo-serve-'));
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child?.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the UI, and Start now backs up the running tiny guest and starts it again', async () => {
    const port = 18_000 + (process.pid % 1000);
    child = spawn(process.execPath, [join(REPO, 'scripts', 'demo.mjs')], {
      env: { ...process.env, COLDVAULT_DEMO_DIR: dir, COLDVAULT_DEMO_LISTEN: `127.0.0.1:${port}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 90_000;
    while (
      !(await fetch(`${base}/api/v1/health`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      expect(Date.now() < deadline, out).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
    }
    const password = /log in with the password (\S+) /.exec(out)?.[1] ?? '';
    expect(password).not.toBe('');
    expect(await fetch(`${base}/`).then((r) => r.text())).toContain('<html');
    const headers = { 'content-type': 'application/json', 'x-requested-with': 'coldvault' };
    const login = await fetch(`${base}/api/v1/login`, { method: 'POST', headers, body: JSON.stringify({ password }) });
    expect(login.status).toBe(200);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const run = await fetch(`${base}/api/v1/jobs/demo/run`, { method: 'POST', headers: { cookie, 'x-requested-with': 'coldvault' } });
    const { taskId } = (await run.json()) as { taskId: string };
    let status = 'running';
    while (status === 'running') {
      await new Promise((r) => setTimeout(r, 500));
      status = ((await (await fetch(`${base}/api/v1/tasks/${taskId}`, { headers: { cookie } })).json()) as { status: string }).status;
    }
    const log = ((await (await fetch(`${base}/api/v1/tasks/${taskId}/log`, { headers: { cookie } })).json()) as Array<{ message: string }>).map(
      (l) => l.message,
    );
    expect(status, log.join('\n')).toBe('ok');
    expect(log.some((l) => l.startsWith('Finished Backup of VM 101'))).toBe(true);
    expect(log).toContain('stopping virtual guest');
    expect(log.some((l) => l.startsWith('guest is online again'))).toBe(true);
    expect(log.some((l) => l.startsWith('Finished Backup of VM 102'))).toBe(true);
  });
});
