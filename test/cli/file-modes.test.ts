/**
 * Private files (issue 10, item 3): what coldvault creates in a datastore and in its state dir is
 * private to its owner (files 0600, folders 0700) whatever the umask, checked by walking the trees
 * with lstat after real runs of the built CLI under `umask 000`; `verify` and `serve` warn, with the
 * fix, about files others may read; on a filesystem without Unix modes (exFAT through FUSE, on a
 * real loop device) the check says so once instead of warning about every file.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datastore } from '../../dist/datastore/index.js';
import { CLI, imagePath, makeLab, spawnCli, writeGuest, writeImage, type CliResult, type Lab } from '../helpers/fixtures.js';
import { diskPath, makeJobLab, writeGuestConf, type JobLab } from '../jobs/helpers-jobs.js';
import { Loops, sh } from '../jobs/helpers-devices.js';
import { chunkFileList } from './cli-lab.js';

/** Runs the built CLI under `umask <mask>` (000: every file the process creates without a mode would be 0666). */
function cliUmask(mask: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', `umask ${mask} && exec "$@"`, 'sh', process.execPath, CLI, ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(mask: string, args: string[]): Promise<CliResult> {
  const r = await cliUmask(mask, args);
  if (r.code !== 0) throw new Error(`coldvault ${args.join(' ')} exited ${r.code}\n${r.stderr}\n${r.stdout}`);
  return r;
}

/** Every file and folder under `root` (and root) that group or others may read, write or enter: "mode path". */
function exposedUnder(root: string): string[] {
  const out: string[] = [];
  const visit = (path: string): void => {
    const s = lstatSync(path);
    if (s.isSymbolicLink()) return;
    if ((s.mode & 0o077) !== 0) out.push(`${(s.mode & 0o777).toString(8)} ${path}`);
    if (s.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(root);
  return out;
}

const modeWarnings = (stderr: string): string[] => stderr.split('\n').filter((l) => /^WARN: .*(other local users|no Unix file modes)/.test(l));

describe('files coldvault creates are private to their owner, whatever the umask', () => {
  let lab: Lab;

  beforeAll(() => {
    lab = makeLab('cv-modes-');
    writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
    writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), ['random', 'text', 'zero', 'random'], 91);
  });
  afterAll(() => lab?.cleanup());

  it('a store made, backed up to twice, verified and pruned under umask 000 has nothing that group or others may use', async () => {
    await ok('000', ['datastore', 'init', lab.storeDir]);
    await ok('000', ['backup', '101', ...lab.flags]);
    await ok('000', ['backup', '101', ...lab.flags]);
    await ok('000', ['verify', '--store', lab.storeDir]);
    await ok('000', ['prune', '101', '--keep-last', '1', '--store', lab.storeDir]);
    expect(existsSync(join(lab.storeDir, 'catalog.sqlite'))).toBe(true);
    expect(chunkFileList(lab.storeDir).length).toBeGreaterThan(0);
    expect(exposedUnder(lab.storeDir)).toEqual([]);
  });

  it('a restore under umask 000 writes the new guest config 0600', async () => {
    const versions = JSON.parse((await ok('000', ['list', '101', '--json', '--store', lab.storeDir])).stdout) as Array<{ version: number }>;
    await ok('000', ['restore', '101', '--version', String(versions[0]!.version), '--new-id', '301', ...lab.flags]);
    expect(lstatSync(join(lab.guestsDir, '301.conf')).mode & 0o777).toBe(0o600);
  });

  it('a staging folder, a lock and a writer registration are private too (umask 000, in process)', async () => {
    const store = await Datastore.open(lab.storeDir);
    const before = process.umask(0);
    try {
      const staging = await store.createStaging('101');
      await staging.writeFile('manifest.json', '{}');
      const lock = await store.locks.acquire('guest-101', 'test');
      const writer = await store.locks.registerWriter('test');
      expect(readdirSync(join(lab.storeDir, 'locks')).length).toBeGreaterThanOrEqual(2);
      expect(exposedUnder(lab.storeDir)).toEqual([]);
      await Promise.all([lock.release(), writer.release(), store.discardStaging(staging)]);
    } finally {
      process.umask(before);
    }
  });

  it('verify warns about a chunk chmod 644 and an open folder, naming them and the fix; its exit code is unchanged', async () => {
    const chunk = chunkFileList(lab.storeDir)[0]!.path;
    chmodSync(chunk, 0o644);
    chmodSync(join(lab.storeDir, 'guests'), 0o755);
    const r = await cliUmask('022', ['verify', '--store', lab.storeDir]);
    expect(r.code, r.stderr).toBe(0);
    const warned = modeWarnings(r.stderr);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain(`'${chunk}'`);
    expect(warned[0]).toContain(`'${join(lab.storeDir, 'guests')}'`);
    expect(warned[0]).toContain(`chmod -R go-rwx '${lab.storeDir}'`);
    execFileSync('chmod', ['-R', 'go-rwx', lab.storeDir]); // the fix it names
    const again = await cliUmask('022', ['verify', '--store', lab.storeDir]);
    expect(again.code).toBe(0);
    expect(modeWarnings(again.stderr)).toEqual([]);
  });
});

describe('the state dir after a job run, and serve at start', () => {
  let lab: JobLab;
  let state: string;

  beforeAll(async () => {
    lab = await makeJobLab('cv-modes-state-');
    state = join(lab.root, 'fresh-state'); // created by coldvault itself
    mkdirSync(join(lab.storageDir, 'images', '101'), { recursive: true });
    writeGuestConf(lab, '101', 'modes101');
    writeImage(diskPath(lab, '101'), ['random', 'text'], 92);
  });
  afterAll(() => lab?.cleanup());

  it('a job run under umask 000 leaves a state dir (database, task logs, locks) and a store that only the owner may use', async () => {
    const flags = ['--config', lab.configPath, '--state-dir', state];
    await ok('000', ['job', 'add', 'modes', '--store', lab.storeDir, '--vmid', '101', ...flags]);
    await ok('000', ['job', 'run', 'modes', ...flags]);
    expect(readdirSync(state)).toEqual(expect.arrayContaining(['coldvault.sqlite', 'tasks']));
    expect(readdirSync(join(state, 'tasks')).some((n) => n.endsWith('.log'))).toBe(true);
    expect(exposedUnder(state)).toEqual([]);
    expect(exposedUnder(lab.storeDir)).toEqual([]);
  });

  it('serve warns at start about a TLS key, a config file and a datastore that others may read; the state dir it makes is private', async () => {
    const cert = join(lab.root, 'cert.pem');
    const key = join(lab.root, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], {
      stdio: 'ignore',
    });
    chmodSync(key, 0o644);
    const chunk = chunkFileList(lab.storeDir)[0]!.path;
    chmodSync(chunk, 0o644);
    const config = join(lab.root, 'serve.json');
    writeFileSync(
      config,
      JSON.stringify({
        node: 'testnode',
        stateDir: join(lab.root, 'serve-state'),
        guestsDir: lab.guestsDir,
        storages: { local: lab.storageDir },
        hypervisor: { driver: 'none' },
        datastores: { usb1: lab.storeDir },
        tls: { cert, key },
      }),
      { mode: 0o644 },
    );
    const child = spawnCli(['serve', '--config', config, '--listen', '127.0.0.1:0']);
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const until = Date.now() + 30_000;
    const started = (): boolean => modeWarnings(out).length >= 3 && /web UI and API on/.test(out);
    while (!started() && Date.now() < until && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    const running = readdirSync(join(lab.root, 'serve-state'));
    const exposedWhileRunning = exposedUnder(join(lab.root, 'serve-state')); // with the database's -wal and -shm
    child.kill('SIGTERM');
    expect(await exited, out).toBe(0);
    expect(out).toMatch(/web UI and API on https:/);
    const warned = modeWarnings(out);
    expect(
      warned.find((l) => l.includes(`'${key}'`)),
      out,
    ).toContain(`chmod -R go-rwx '${key}'`);
    expect(
      warned.find((l) => l.includes(`'${config}'`)),
      out,
    ).toBeDefined();
    expect(
      warned.find((l) => l.includes(`'${chunk}'`)),
      out,
    ).toContain(`chmod -R go-rwx '${lab.storeDir}'`);
    expect(warned.filter((l) => l.includes('serve-state'))).toEqual([]);
    expect(running).toEqual(expect.arrayContaining(['coldvault.sqlite', 'coldvault.sqlite-wal', 'coldvault.sqlite-shm']));
    expect(exposedWhileRunning).toEqual([]);
    expect(exposedUnder(join(lab.root, 'serve-state'))).toEqual([]);
  });
});

describe('a datastore on exFAT (no Unix modes; exfat-fuse on a real loop device)', () => {
  let lab: Lab;
  let loops: Loops;
  let mnt: string;
  let device: string;

  beforeAll(async () => {
    lab = makeLab('cv-modes-exfat-');
    loops = new Loops(mkdtempSync(join(tmpdir(), 'cv-modes-exfat-loops-')));
    const loop = loops.make('exfat', '256M', (dev) => sh('mkfs.exfat', [dev]));
    mnt = join(lab.root, 'usb');
    mkdirSync(mnt);
    device = loop.path;
    sh('mount.exfat-fuse', [loop.path, mnt]); // default options: every file shows 0777
    lab.storeDir = join(mnt, 'store');
    lab.flags = ['--store', lab.storeDir, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`];
    writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
    writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), ['random', 'text'], 93);
    await ok('022', ['datastore', 'init', lab.storeDir]);
    await ok('022', ['backup', '101', ...lab.flags]);
    await ok('022', ['backup', '101', ...lab.flags]);
  });
  afterAll(async () => {
    await loops?.cleanup([mnt]);
    lab?.cleanup();
  });

  it('verify says once that the modes cannot be checked there and names the mount option, instead of a warning per file', async () => {
    const r = await cliUmask('022', ['verify', '--store', lab.storeDir]);
    expect(r.code, r.stderr).toBe(0);
    const warned = modeWarnings(r.stderr);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/no Unix file modes: every local user can read the backups there; mount it with umask=077/);
  });

  it('mounted with umask=077, verify notes once that the modes were not checked, and warns about nothing', async () => {
    sh('umount', [mnt]);
    sh('mount.exfat-fuse', ['-o', 'umask=077', device, mnt]);
    const r = await cliUmask('022', ['verify', '--store', lab.storeDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(modeWarnings(r.stderr)).toEqual([]);
    expect(r.stderr.split('\n').filter((l) => /file modes in .* not checked: fuseblk has no Unix file modes/.test(l))).toHaveLength(1);
  });
});
