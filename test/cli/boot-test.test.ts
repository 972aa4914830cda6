/**
 * `coldvault boot-test` (issue 15): the tiny real guest booted by the built CLI from its archived
 * config (memory, `args:` with its kernel, the disk from an NBD export with snapshot=on, no network;
 * TCG): a good version passes (exit 0, the verdict in `list`, a real PNG of its screen, the real disk
 * untouched), a version whose disk had its ext4 superblock zeroed before the backup fails (exit 1, the
 * reason names the guest's power-off and its last console lines, the screenshot kept), a damaged
 * chunk fails the test naming it, a timeout is
 * honoured, the guest agent's guest-ping answer is a signal (the tiny guest's minimal agent), a user script is a signal, an OVMF guest boots with its
 * archived EFI variables;
 * the API lists the verdicts and serves the screenshot; a job with bootTest boots its new version and
 * reports the failure in its log, the catalog and the mail while the backup stays successful;
 * bootTest.maxConcurrent makes a second test wait; SIGTERM tears a test down; no QEMU process,
 * socket, scratch folder or slot is left behind.
 */
import { readdirSync, readFileSync, writeFileSync, chmodSync, copyFileSync, existsSync, openSync, writeSync, closeSync, mkdirSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cli, imagePath, makeLab, writeGuest, writeServeConfig, type CliResult, type Lab } from '../helpers/fixtures.js';
import { part, startSmtpSink, subjectOf } from '../helpers/smtp.js';
import { ensureTinyGuest, makeGuestDisk, readBootCount, type TinyGuest } from '../helpers/tiny-guest.js';
import { makeServerLab } from '../server/helpers-server.js';

let lab: Lab;
let guest: TinyGuest;
let config: string;
let scratch: string;
let sink: Awaited<ReturnType<typeof startSmtpSink>>;
const MARKER = 'coldvault-tiny-guest: boot \\d+ marker';
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const run = (args: string[]): Promise<CliResult> => cli([...args, '--config', config], { env: { TMPDIR: scratch } });
const bootTest = (version: number, extra: string[]): Promise<CliResult> =>
  run(['boot-test', '101', '--version', String(version), '--store', 'main', '--json', ...extra]);

interface Outcome {
  ok: boolean;
  seconds: number;
  signal: string;
  detail: string;
  screenshot: string | null;
}

async function ok(args: string[]): Promise<string> {
  const r = await run(args);
  if (r.code !== 0) throw new Error(`coldvault ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

function zeroSuperblock(disk: string): void {
  const fd = openSync(disk, 'r+');
  writeSync(fd, Buffer.alloc(1024), 0, 1024, 1024); // ext4's primary superblock: 1 KiB at offset 1 KiB
  closeSync(fd);
}

async function listed(): Promise<Array<{ version: number; bootTest: { ok: boolean; seconds: number; signal: string; detail: string } | null }>> {
  return JSON.parse(await ok(['list', '101', '--store', 'main', '--json']));
}

beforeAll(async () => {
  lab = makeLab('cv-boot-');
  scratch = join(lab.root, 'tmp');
  mkdirSync(scratch);
  guest = await ensureTinyGuest();
  sink = await startSmtpSink();
  const mail = { transport: 'smtp', host: '127.0.0.1', port: sink.port, secure: false, tlsRejectUnauthorized: false, from: 'backup@pve.example.com' };
  config = writeServeConfig(lab, 'pve1', 'state', { bootTest: { accel: 'tcg' }, mail });
  const args = `args: -kernel ${guest.kernel} -initrd ${guest.initrd} -append 'console=ttyS0 panic=-1 quiet'\n`;
  writeGuest(lab, '101', [{ key: 'virtio0', file: 'vm-101-disk-0.raw' }], args);
  const disk = imagePath(lab, '101', 'vm-101-disk-0.raw');
  await makeGuestDisk(disk, 24);
  await ok(['datastore', 'init', lab.storeDir]);
  await ok(['backup', '101', ...lab.flags]);
  // an OVMF guest: its EFI variables on efidisk0 (a copy of OVMF's 4M template, as Proxmox makes it)
  writeGuest(
    lab,
    '102',
    [
      { key: 'efidisk0', file: 'vm-102-disk-1.raw', extra: 'efitype=4m' },
      { key: 'virtio0', file: 'vm-102-disk-0.raw' },
    ],
    `bios: ovmf\n${args}`,
  );
  await makeGuestDisk(imagePath(lab, '102', 'vm-102-disk-0.raw'), 16);
  copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd', imagePath(lab, '102', 'vm-102-disk-1.raw'));
  await ok(['backup', '102', ...lab.flags]);
  zeroSuperblock(disk);
  await ok(['backup', '101', ...lab.flags]);
}, 300_000);

/** After each test: no QEMU of this lab runs, and no socket, scratch folder or slot lock is left. */
afterEach(async () => {
  const qemus = (await execa('pgrep', ['-af', 'qemu-system'], { reject: false })).stdout.split('\n');
  expect(qemus.filter((l) => l.includes(lab.root))).toEqual([]);
  expect(readdirSync(scratch)).toEqual([]);
  const slots = join(lab.root, 'state', 'boot-tests', 'slots');
  expect(existsSync(slots) ? readdirSync(slots) : []).toEqual([]);
});

afterAll(async () => {
  await sink?.close();
  lab?.cleanup();
});

describe('coldvault boot-test', () => {
  it('a good version boots: exit 0, the matched line, the verdict in list, a PNG of the screen; nothing written to the disk', async () => {
    const r = await bootTest(1, ['--expect', MARKER, '--timeout', '60']);
    expect(r.code, r.stderr).toBe(0);
    const outcome = JSON.parse(r.stdout) as Outcome;
    expect(outcome).toMatchObject({ ok: true, signal: `serial /${MARKER}/` });
    expect(outcome.detail).toMatch(/^serial: coldvault-tiny-guest: boot 1 marker [0-9a-f]+$/);
    expect(outcome.seconds).toBeGreaterThan(0);
    expect(outcome.screenshot).toMatch(/\/state\/boot-tests\/[0-9a-f-]+\/101-1\.png$/);
    const png = readFileSync(outcome.screenshot as string);
    expect(png.subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
    expect((await execa('stat', ['-c', '%a', outcome.screenshot as string])).stdout).toBe('600');
    const v1 = (await listed()).find((v) => v.version === 1);
    expect(v1?.bootTest).toMatchObject({ ok: true, signal: `serial /${MARKER}/` });
    expect(await ok(['list', '101', '--store', 'main'])).toMatch(/Version: 1 .*boots \(\d+(\.\d)? s\)/);
    expect(await readBootCount(imagePath(lab, '101', 'vm-101-disk-0.raw'))).toBe(0); // the real disk was never touched
  }, 90_000);

  it('a version whose disk was damaged before the backup fails: exit 1, the reason with the console, the screenshot kept', async () => {
    const r = await bootTest(2, ['--expect', MARKER, '--timeout', '60']);
    expect(r.code).toBe(1);
    const outcome = JSON.parse(r.stdout) as Outcome;
    expect(outcome.ok).toBe(false);
    expect(outcome.detail).toMatch(/the guest powered off after \d+ s without giving the signal/);
    expect(outcome.detail).toContain('coldvault-tiny-guest: error: cannot mount /dev/vda');
    expect(r.stderr).toMatch(/ERROR: boot test failed: the guest powered off/);
    expect(
      readFileSync(outcome.screenshot as string)
        .subarray(0, 8)
        .equals(PNG_MAGIC),
    ).toBe(true);
    expect((await listed()).find((v) => v.version === 2)?.bootTest).toMatchObject({ ok: false });
    expect(await ok(['list', '101', '--store', 'main'])).toMatch(/Version: 2 .*boot test FAILED/);
  }, 90_000);

  it('a version with a damaged chunk fails, naming the unreadable chunks (the export serves no wrong data)', async () => {
    const store = join(lab.root, 'damaged-store');
    execFileSync('cp', ['-a', lab.storeDir, store]);
    const manifest = JSON.parse(readFileSync(join(store, 'guests', '101', '1', 'manifest.json'), 'utf8')) as { disks: Array<{ index: string }> };
    const index = readFileSync(join(store, 'guests', '101', '1', manifest.disks[0]?.index ?? ''));
    const hex = index.toString('hex', 64, 96); // the first chunk: the file system's superblock and group descriptors
    const victim = join(store, 'chunks', hex.slice(0, 4), hex);
    const bytes = readFileSync(victim);
    bytes[bytes.length - 1] = (bytes.at(-1) ?? 0) ^ 0xff;
    writeFileSync(victim, bytes);
    const r = await run(['boot-test', '101', '--version', '1', '--store', store, '--expect', MARKER, '--timeout', '60', '--json']);
    expect(r.code).toBe(1);
    expect((JSON.parse(r.stdout) as Outcome).detail).toMatch(/1 chunk\(s\) of the version could not be read/);
    expect(r.stderr).toContain(`chunk ${hex} is damaged`);
  }, 90_000);

  it('honours the timeout: a line that never comes fails after --timeout seconds', async () => {
    const started = Date.now();
    // 20 s: the guest (TCG) is up well before on an idle machine, and still within it on a busy CI one
    const r = await bootTest(1, ['--expect', 'never-printed', '--timeout', '20']);
    expect(r.code).toBe(1);
    const outcome = JSON.parse(r.stdout) as Outcome;
    expect(outcome.detail).toMatch(/^timeout: no serial \/never-printed\/ within 20 s; the serial console's last lines: .*coldvault-tiny-guest: boot 1 marker/);
    expect(Date.now() - started).toBeLessThan(45_000);
    expect((await listed()).find((v) => v.version === 1)?.bootTest).toMatchObject({ ok: false, signal: 'serial /never-printed/' });
  }, 60_000);

  it('the guest agent is a signal: --agent passes once the guest answers guest-ping on its virtio-serial channel', async () => {
    const r = await bootTest(1, ['--agent', '--timeout', '60']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout) as Outcome).toMatchObject({ ok: true, signal: 'guest-agent', detail: 'guest-agent: guest-ping answered' });
  }, 90_000);

  it('a user script is a signal: it sees the serial log and passes once it exits 0', async () => {
    const script = join(lab.root, 'check.sh');
    writeFileSync(script, `#!/bin/sh\ngrep -q 'boot 1 marker' "$COLDVAULT_SERIAL_LOG" && echo "guest $COLDVAULT_VMID/$COLDVAULT_VERSION is up"\n`);
    chmodSync(script, 0o755);
    const r = await bootTest(1, ['--script', script, '--timeout', '60']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as Outcome).detail).toBe('script: exited 0 (guest 101/1 is up)');
  }, 90_000);

  it('boots an OVMF guest with its archived EFI variables (efidisk0 from the export, snapshot=on)', async () => {
    const r = await run(['boot-test', '102', '--version', '1', '--store', 'main', '--json', '--expect', MARKER, '--timeout', '120']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('disks virtio0 (snapshot=on), EFI variables from efidisk0 (snapshot=on)');
    expect((JSON.parse(r.stdout) as Outcome).ok).toBe(true);
  }, 150_000);

  it('refuses two signals at once and a bad pattern (usage, exit 2)', async () => {
    expect((await bootTest(1, ['--agent', '--expect', 'x'])).stderr).toMatch(/give one signal/);
    const bad = await bootTest(1, ['--expect', '(']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--expect '\(' is not a regular expression/);
    expect((await bootTest(1, ['--accel', 'hvf'])).stderr).toMatch(/--accel 'hvf': expected kvm:tcg, kvm or tcg/);
  });

  it('the API lists each version with its boot test and serves the screenshot (PNG); 404 for an untested version', async () => {
    const server = await makeServerLab({ config: { stateDir: join(lab.root, 'state'), datastores: { main: lab.storeDir } } });
    try {
      const versions = (await server.api('GET', '/api/v1/backups?store=main&guest=101')).json() as Array<{ version: number; bootTest: { ok: boolean } | null }>;
      expect(versions.map((v) => [v.version, v.bootTest?.ok])).toEqual([
        [1, true],
        [2, false],
      ]);
      const png = await server.api('GET', '/api/v1/backups/101/2/screenshot?store=main');
      expect(png.statusCode, png.body).toBe(200);
      expect(png.headers['content-type']).toBe('image/png');
      expect(png.rawPayload.subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
      const none = await server.api('GET', '/api/v1/backups/101/9/screenshot?store=main');
      expect(none.statusCode).toBe(404);
      expect(none.body).toMatch(/has no boot test screenshot/);
    } finally {
      await server.close();
    }
  });

  it('a job with bootTest boots each new version after the backup: a passing one (the OVMF guest) and a failed one, reported (log, mail, catalog), the backup stays', async () => {
    await ok([
      'job',
      'add',
      'bt',
      '--store',
      lab.storeDir,
      '--vmid',
      '101,102',
      '--boot-test',
      '--boot-test-expect',
      MARKER,
      '--boot-test-timeout',
      '60',
      '--mailto',
      'ops@example.com',
    ]);
    const r = await run(['job', 'run', 'bt']);
    expect(r.code, r.stderr + r.stdout).toBe(0); // the backup itself succeeded: the disk it read is the damaged one
    expect(r.stdout).toMatch(/INFO: boot test of guest 101 version 3/);
    expect(r.stdout).toMatch(/ERROR: boot test failed: the guest powered off .*cannot mount \/dev\/vda/);
    expect((await listed()).find((v) => v.version === 3)?.bootTest).toMatchObject({ ok: false, signal: `serial /${MARKER}/` });
    const mail = sink.got.at(-1);
    expect(subjectOf(mail?.raw ?? '')).toBe('coldvault backup status (pve1, job bt): backup successful, boot test failed');
    expect(part(mail?.raw ?? '', 'text/plain')).toMatch(/Boot tests:\n101 version 3: FAILED after [\d.]+ s: the guest powered off/);
    expect(r.stdout).toMatch(/INFO: boot test passed in [\d.]+ s: serial: coldvault-tiny-guest: boot \d+ marker/);
    expect(r.stdout).not.toContain('\x1b'); // OVMF clears the screen on the serial port: no escape reaches the log, catalog or mail
    expect(part(mail?.raw ?? '', 'text/plain')).toMatch(/\n102 version 2: passed in [\d.]+ s \(serial: coldvault-tiny-guest: boot 1 marker [0-9a-f]+\)/);
    const ovmf = JSON.parse(await ok(['list', '102', '--store', 'main', '--json'])) as Array<{ version: number; bootTest: { ok: boolean } | null }>;
    expect(ovmf.find((v) => v.version === 2)?.bootTest).toMatchObject({ ok: true });
  }, 180_000);

  it('bootTest.maxConcurrent bounds the tests at once: a second one waits for the slot, then runs', async () => {
    const one = join(lab.root, 'one-at-a-time.json');
    writeFileSync(one, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), bootTest: { accel: 'tcg', maxConcurrent: 1 } }));
    const test = (extra: string[]): Promise<CliResult> =>
      cli(['boot-test', '101', '--version', '1', '--store', 'main', '--config', one, ...extra], { env: { TMPDIR: scratch } });
    const first = test(['--expect', 'never-printed', '--timeout', '6']);
    await new Promise((r) => setTimeout(r, 1_500)); // the first one holds the slot by now
    const second = await test(['--expect', MARKER, '--timeout', '60']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/waiting for a boot test slot: 1 boot test\(s\) already run on this host/);
    expect((await first).code).toBe(1);
  }, 90_000);

  it('SIGTERM ends a running test: QEMU killed, export closed, nothing recorded', async () => {
    const before = (await listed()).find((v) => v.version === 1)?.bootTest;
    const args = [CLI, 'boot-test', '101', '--version', '1', '--store', 'main', '--timeout', '120', '--config', config];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TMPDIR: scratch } });
    let err = '';
    child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 30_000;
    while (!/waiting up to 120 s/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    expect(await exited).toBe(1);
    expect(err).toMatch(/was interrupted/);
    expect((await listed()).find((v) => v.version === 1)?.bootTest).toEqual(before); // the verdict of the test before stays
    const qemus = (await execa('pgrep', ['-af', 'qemu-system'], { reject: false })).stdout.split('\n');
    expect(qemus.filter((l) => l.includes(lab.root))).toEqual([]);
  }, 60_000);

  it('a coldvault killed hard (SIGKILL) takes its QEMU along (parent-death signal); the next test removes its scratch folder and takes over its slot', async () => {
    const args = [CLI, 'boot-test', '101', '--version', '1', '--store', 'main', '--timeout', '120', '--config', config];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TMPDIR: scratch } });
    let err = '';
    child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    const deadline = Date.now() + 30_000;
    while (!/waiting up to 120 s/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const qemuOfLab = async (): Promise<string[]> =>
      (await execa('pgrep', ['-af', 'qemu-system'], { reject: false })).stdout.split('\n').filter((l) => l.includes(lab.root));
    expect(await qemuOfLab()).toHaveLength(1);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    await expect.poll(qemuOfLab, { timeout: 5_000 }).toEqual([]);
    // a hard kill leaves its scratch folder (in TMPDIR) and a stale slot lock: the next test removes the one and takes over the other
    const slots = join(lab.root, 'state', 'boot-tests', 'slots');
    expect(readdirSync(slots)).toEqual(['slot-0.lock']);
    expect(readdirSync(scratch)).toEqual([expect.stringMatching(new RegExp(`^coldvault-boot-${child.pid}-`))]);
    const next = await bootTest(1, ['--expect', MARKER, '--timeout', '60']);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).not.toMatch(/waiting for a boot test slot/);
  }, 90_000);
});
