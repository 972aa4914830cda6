/**
 * `coldvault restore --live` (issue 15, restore-on-the-fly), with the built CLI and the tiny real
 * guest under QEMU (TCG), qemu driver: the restored guest boots on its backup while the copy still
 * runs (QMP shows the mirror job not yet in sync when the guest's boot line appears), writes its
 * marker meanwhile, and after the pivot runs on its final volume (QMP `query-block`), which holds
 * the original data (a 24 MiB random file) plus the guest's writes (its marker and boot counter).
 * kill -9 of the restoring process: the guest keeps running, its version stays held (prune keeps it,
 * gc keeps its chunks, while no process drives the restore), `--resume-live` finishes the copy.
 * A guest powered off during the copy: the copy is finished from its overlay. An encrypted version:
 * refused without its key, restored live with it. A damaged chunk: the
 * restore fails naming it, the guest is stopped, nothing is left. Refusals: another driver (Proxmox's
 * qm), --force, --bwlimit without --live. After each test no QEMU process, socket, scratch folder,
 * overlay or journal of this lab is left (checked).
 * The copy is slowed (--bwlimit 0.5: about 50 s for the disk's data) so that the guest's boot surely comes first; once that is seen
 * the test lifts the cap over QMP (block-job-set-speed) so the copy ends soon.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QmpClient } from '../../dist/guests/hypervisor/index.js';
import { CLI, cli, imagePath, makeLab, writeGuest, writeServeConfig, type CliResult, type Lab } from '../helpers/fixtures.js';
import { ensureTinyGuest, makeGuestDisk, readBootCount, readMarker } from '../helpers/tiny-guest.js';

let lab: Lab;
let config: string;
let scratch: string;
let consoleLog: string;
const payload = (): string => join(lab.root, 'payload');
const BOOT_LINE = /coldvault-tiny-guest: boot 1 marker ([0-9a-f]+)/;

const env = (): Record<string, string> => ({ TMPDIR: scratch });
const run = (args: string[], configFile = config): Promise<CliResult> => cli([...args, '--config', configFile], { env: env() });
const qmpSocket = (id: string): string => join(lab.root, 'run', `${id}.qmp`);
const finalVolume = (id: string): string => imagePath(lab, id, `vm-${id}-disk-0.raw`);
const journal = (id: string): string => join(lab.root, 'state', 'live-restores', `${id}.json`);

async function qmp<T = unknown>(id: string, command: string, args?: Record<string, unknown>): Promise<T> {
  const client = await QmpClient.connect(qmpSocket(id));
  try {
    return await client.execute<T>(command, args);
  } finally {
    await client.close();
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The restored guest's boot token, once its console says it (it wrote its marker and synced before). */
function bootToken(restoring: Restoring): Promise<string> {
  return waitFor('the restored guest to boot', () => {
    if (restoring.child.exitCode !== null) throw new Error(`the restore exited with ${restoring.child.exitCode} before the guest booted:\n${restoring.err()}`);
    return BOOT_LINE.exec(existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8') : '')?.[1];
  });
}

interface Restoring {
  child: ChildProcess;
  exited: Promise<number | null>;
  err: () => string;
}

function startLiveRestore(newId: string, extra: string[] = [], version = 1): Restoring {
  const child = spawn(
    process.execPath,
    [CLI, 'restore', '101', '--version', String(version), '--new-id', newId, '--live', '--store', 'main', '--config', config, ...extra],
    {
      env: { ...process.env, ...env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  child.stdout?.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, err: () => err };
}

async function copyJob(id: string): Promise<{ offset: number; len: number; ready: boolean } | undefined> {
  const jobs = await qmp<Array<{ device: string; offset: number; len: number; ready: boolean }>>(id, 'query-block-jobs');
  return jobs.find((j) => j.device === 'live-restore-virtio0');
}

async function driveFile(id: string): Promise<string | undefined> {
  const blocks = await qmp<Array<{ device: string; inserted?: { file: string } }>>(id, 'query-block');
  return blocks.find((b) => b.device === 'drive-virtio0')?.inserted?.file;
}

const qemuAnswers = async (id: string): Promise<boolean> => (await qmp(id, 'query-status').then(() => true)).valueOf();

/** Powers the guest off over ACPI (the tiny guest obeys) and waits until its QEMU is gone. */
async function powerOff(id: string): Promise<void> {
  await qmp(id, 'system_powerdown');
  await waitFor(`guest ${id} to power off`, async () => ((await qemuAnswers(id).catch(() => false)) ? undefined : true), 60_000);
}

async function expectPayloadIntact(volume: string): Promise<void> {
  const out = join(lab.root, 'payload.out');
  rmSync(out, { force: true });
  execFileSync('debugfs', ['-R', `dump /payload ${out}`, volume], { stdio: 'ignore' });
  expect(readFileSync(out).equals(readFileSync(payload()))).toBe(true);
}

function labQemus(): Promise<string[]> {
  return execa('pgrep', ['-af', 'qemu-system'], { reject: false }).then((r) => r.stdout.split('\n').filter((l) => l.includes(lab.root)));
}

beforeAll(async () => {
  lab = makeLab('cv-live-');
  scratch = join(lab.root, 'tmp');
  consoleLog = join(lab.root, 'console.log');
  mkdirSync(scratch);
  mkdirSync(join(lab.root, 'run'));
  const guest = await ensureTinyGuest();
  const hypervisor = { driver: 'qemu', qmpSocket: join(lab.root, 'run', '{vmid}.qmp'), accel: 'tcg' };
  config = writeServeConfig(lab, 'pve1', 'state', { hypervisor });
  writeGuest(
    lab,
    '101',
    [{ key: 'virtio0', file: 'vm-101-disk-0.raw' }],
    `args: -kernel ${guest.kernel} -initrd ${guest.initrd} -append 'console=ttyS0 panic=-1 quiet' -serial file:${consoleLog}\n`,
  );
  // no NIC: the restored guest gets its config's NICs on their bridges, which this host has not
  const conf = join(lab.guestsDir, '101.conf');
  writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^net0:.*\n/m, ''));
  const disk = imagePath(lab, '101', 'vm-101-disk-0.raw');
  await makeGuestDisk(disk, 64);
  writeFileSync(payload(), randomBytes(24 << 20)); // data the mirror copies at the --bwlimit (zeroes it skips)
  execFileSync('debugfs', ['-w', '-R', `write ${payload()} payload`, disk], { stdio: 'ignore' });
  for (const args of [
    ['datastore', 'init', lab.storeDir],
    ['backup', '101', '--store', 'main'],
  ]) {
    const r = await run(args);
    if (r.code !== 0) throw new Error(`coldvault ${args.join(' ')}: ${r.stderr}`);
  }
}, 300_000);

afterEach(async () => {
  // what a test left is removed first (so one failure does not fail the next), then reported
  const qemus = await labQemus();
  for (const line of qemus) process.kill(Number(line.split(' ')[0]), 'SIGKILL');
  const images = join(lab.storageDir, 'images');
  const left = {
    qemus,
    sockets: readdirSync(join(lab.root, 'run')),
    scratch: readdirSync(scratch),
    journals: existsSync(join(lab.root, 'state', 'live-restores')) ? readdirSync(join(lab.root, 'state', 'live-restores')) : [],
    overlays: readdirSync(images).flatMap((d) => readdirSync(join(images, d)).filter((f) => f.includes('overlay'))),
  };
  for (const dir of [join(lab.root, 'run'), scratch, join(lab.root, 'state', 'live-restores')]) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }
  rmSync(consoleLog, { force: true });
  expect(left).toEqual({ qemus: [], sockets: [], scratch: [], journals: [], overlays: [] });
});

afterAll(() => lab?.cleanup());

describe('restore --live', () => {
  it('boots the guest before its copy is done; after the pivot it runs on its final volume, which holds the backup plus its writes', async () => {
    const restoring = startLiveRestore('201', ['--bwlimit', '0.5']);
    const token = await bootToken(restoring);
    const job = await copyJob('201');
    expect(job?.ready).toBe(false); // the guest is up (and wrote its marker) while the copy still runs
    expect(job?.offset).toBeLessThan(job?.len ?? 0);
    expect(await driveFile('201')).toContain('.live-overlay.qcow2');
    await qmp('201', 'block-job-set-speed', { device: 'live-restore-virtio0', speed: 0 });
    expect(await restoring.exited, restoring.err()).toBe(0);
    expect(restoring.err()).toMatch(/guest 201 started [\d.]+ s after the command, on overlays over the backup/);
    expect(restoring.err()).toContain(`disk 'virtio0' now runs on '${finalVolume('201')}'`);
    expect(await driveFile('201')).toBe(finalVolume('201'));
    expect(readFileSync(join(lab.guestsDir, '201.conf'), 'utf8')).toMatch(/^virtio0: local:201\/vm-201-disk-0\.raw/m);
    await powerOff('201');
    expect((await readMarker(finalVolume('201')))?.token).toBe(token);
    expect(await readBootCount(finalVolume('201'))).toBe(1);
    await expectPayloadIntact(finalVolume('201'));
  }, 180_000);

  it('kill -9 of the restoring process: the guest keeps running; --resume-live finishes the copy and the pivot', async () => {
    const restoring = startLiveRestore('202', ['--bwlimit', '0.5']);
    const token = await bootToken(restoring);
    await waitFor('the copy to run', async () => ((await copyJob('202').catch(() => undefined)) ? true : undefined));
    restoring.child.kill('SIGKILL');
    await restoring.exited;
    expect(await qmp<{ status: string }>('202', 'query-status')).toMatchObject({ status: 'running' });
    expect(existsSync(journal('202'))).toBe(true);
    expect(existsSync(join(lab.guestsDir, '202.conf'))).toBe(false);
    // no process drives the restore now, yet its version is held: a newer version and a prune that
    // would remove version 1, then a gc: the version and its chunks stay, prune says who holds it
    const backup = await run(['backup', '101', '--store', 'main']);
    expect(backup.code, backup.stderr).toBe(0);
    const pruned = await run(['prune', '101', '--keep-last', '1', '--store', 'main', '--json']);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(JSON.parse(pruned.stdout)).toMatchObject({ removed: [] });
    expect(pruned.stderr).toMatch(
      /kept version 1 of VM 101: it is being read by live restore of guest 101 version 1 to 202 \(held on .* while '.*202\.json' exists/,
    );
    const gc = await run(['gc', '--store', 'main']);
    expect(gc.code, gc.stderr).toBe(0);
    const resumed = await run(['restore', '--resume-live', '202', '--bwlimit', '1000']); // the store: the one the restore named (journal)
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain('resuming the live restore of guest 101 version 1 to 202');
    expect(await driveFile('202')).toBe(finalVolume('202'));
    expect(existsSync(join(lab.guestsDir, '202.conf'))).toBe(true);
    await powerOff('202');
    expect((await readMarker(finalVolume('202')))?.token).toBe(token);
    await expectPayloadIntact(finalVolume('202'));
  }, 180_000);

  it('a guest powered off during the copy: the copy is finished from its overlay, nothing it wrote is lost', async () => {
    const restoring = startLiveRestore('203', ['--bwlimit', '0.5']);
    const token = await bootToken(restoring);
    await powerOff('203');
    expect(await restoring.exited, restoring.err()).toBe(0);
    expect(restoring.err()).toContain('the copy is finished from its overlays');
    expect(restoring.err()).toContain('guest 203 is stopped; its final volumes are complete');
    expect((await readMarker(finalVolume('203')))?.token).toBe(token);
    await expectPayloadIntact(finalVolume('203'));
    expect(existsSync(join(lab.guestsDir, '203.conf'))).toBe(true);
  }, 180_000);

  it('a damaged chunk: the restore fails naming it, the guest is stopped and nothing it made is left', async () => {
    const store = join(lab.root, 'damaged-store');
    execFileSync('cp', ['-a', lab.storeDir, store]);
    const manifest = JSON.parse(readFileSync(join(store, 'guests', '101', '1', 'manifest.json'), 'utf8')) as { disks: Array<{ index: string }> };
    const index = readFileSync(join(store, 'guests', '101', '1', manifest.disks[0]?.index ?? ''));
    let hex = ''; // the last non-zero chunk (not the superblock's: the guest may boot)
    for (let at = 64; at < index.length; at += 32) if (index.subarray(at, at + 32).some((b) => b !== 0)) hex = index.toString('hex', at, at + 32);
    const victim = join(store, 'chunks', hex.slice(0, 4), hex);
    const bytes = readFileSync(victim);
    bytes[bytes.length - 1] = (bytes.at(-1) ?? 0) ^ 0xff;
    writeFileSync(victim, bytes);
    const r = await run(['restore', '101', '--version', '1', '--new-id', '204', '--live', '--store', store]);
    rmSync(store, { recursive: true, force: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/the copy of disk 'virtio0' stopped at .*could not be read/);
    expect(r.stderr).toContain(hex);
    expect(r.stderr).toContain('the restored guest was stopped');
    expect(existsSync(join(lab.guestsDir, '204.conf'))).toBe(false);
    expect(existsSync(join(lab.storageDir, 'images', '204')) ? readdirSync(join(lab.storageDir, 'images', '204')) : []).toEqual([]);
  }, 180_000);

  it('an encrypted version: refused without its key before anything is made; with --keyfile the guest boots on it and the copy completes', async () => {
    const key = join(lab.root, 'k.key');
    for (const args of [
      ['key', 'create', key, '--kdf', 'none'],
      ['backup', '101', '--store', 'main', '--encrypt', key],
    ]) {
      const r = await run(args);
      expect(r.code, r.stderr).toBe(0);
    }
    const encrypted = Math.max(
      ...readdirSync(join(lab.storeDir, 'guests', '101'))
        .map(Number)
        .filter(Number.isInteger),
    );
    const noKey = await run(['restore', '101', '--version', String(encrypted), '--new-id', '206', '--live', '--store', 'main']);
    expect(noKey.code).not.toBe(0);
    expect(noKey.stderr).toMatch(/encrypted with key/);
    expect(existsSync(join(lab.storageDir, 'images', '206'))).toBe(false);
    const restoring = startLiveRestore('206', ['--keyfile', key, '--bwlimit', '0.5'], encrypted);
    const token = await bootToken(restoring);
    await qmp('206', 'block-job-set-speed', { device: 'live-restore-virtio0', speed: 0 });
    expect(await restoring.exited, restoring.err()).toBe(0);
    expect(await driveFile('206')).toBe(finalVolume('206'));
    await powerOff('206');
    expect((await readMarker(finalVolume('206')))?.token).toBe(token);
    await expectPayloadIntact(finalVolume('206'));
  }, 180_000);

  it('is refused, with the reason and nothing made, for another driver, with --force, and --bwlimit goes with --live only', async () => {
    const proxmox = join(lab.root, 'proxmox.json');
    writeFileSync(proxmox, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), hypervisor: { driver: 'proxmox' } }));
    const refusals: Array<[string[], string, RegExp]> = [
      [['--live'], proxmox, /restore --live needs the qemu driver .*Proxmox's qm cannot start a guest on an external NBD disk/],
      [['--live', '--force'], config, /restore --live does not go with --force/],
      [['--bwlimit', '5'], config, /--bwlimit caps the copy of a --live restore; add --live/],
    ];
    for (const [extra, file, message] of refusals) {
      const r = await run(['restore', '101', '--version', '1', '--new-id', '205', '--store', 'main', ...extra], file);
      expect(r.code, extra.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(existsSync(join(lab.guestsDir, '205.conf'))).toBe(false);
      expect(existsSync(join(lab.storageDir, 'images', '205'))).toBe(false);
    }
  });
});
