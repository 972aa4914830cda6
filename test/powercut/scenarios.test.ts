/**
 * Power cuts at chosen places (the campaign in suite.ts cuts at random ones), on ext4 and XFS:
 * - what a finished operation reported is durable: each of the five operations cut right at its end,
 *   and the protection and verify state that `protect` and `verify` record in the catalog;
 * - a chunk that a killed backup renamed into place before its folder was fsynced, and that the next
 *   backup then trusts by dedup (it only touches it), is there, whole, after a power cut right after
 *   that next backup;
 * - a dedup'd chunk whose touch (mtime) a power cut may undo is still kept by gc, because the version
 *   that uses it is durable; what happens to the mtime is logged;
 * - after a cut and a reboot, the lock of the killed backup does not block the next one, even when its
 *   pid now belongs to another process.
 * Needs root, xfs_io and a C compiler (test/helpers/power-cut/cut-shim.c).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/fixtures.js';
import { checkStore, cutOnce, cleanupPowerCut, OPERATIONS, PowerCutLab, seededRng, uncutBackup, type FsType } from '../helpers/power-cut/index.js';
import { indexDigests } from '../cli/cli-lab.js';

const FILESYSTEMS: FsType[] = ['ext4', 'xfs'];
let lab: PowerCutLab | undefined;
afterEach(() => {
  lab?.destroy();
  lab = undefined;
});
afterAll(() => cleanupPowerCut());

const newLab = async (fs: FsType): Promise<PowerCutLab> => (lab = await PowerCutLab.create(fs, '/tmp', CLI));

/** Chunk names in the store (not temp files). */
function chunkNames(store: string): Set<string> {
  const root = join(store, 'chunks');
  return new Set(readdirSync(root).flatMap((p) => readdirSync(join(root, p)).filter((n) => /^[0-9a-f]{64}$/.test(n))));
}

/** The chunks a version's indexes reference. */
function referenced(store: string, id: string, version: number): Set<string> {
  const dir = join(store, 'guests', id, String(version));
  return new Set(
    readdirSync(dir)
      .filter((n) => n.endsWith('.fidx'))
      .flatMap((n) => indexDigests(join(dir, n)).filter((d): d is string => d !== null)),
  );
}

describe.each(FILESYSTEMS)('power cuts on %s at chosen places', (fs) => {
  // An operation that said "done" (exit 0) must find its work on the disk after the power comes back.
  it('each operation cut right after it ended: its result is durable and the store is whole', async () => {
    const l = await newLab(fs);
    const rng = seededRng(7, 0);
    for (let i = 0; i < 3; i++) expect(await uncutBackup(l, '101', rng)).toEqual([]);
    expect(await uncutBackup(l, '102', rng)).toEqual([]);
    for (const [round, op] of OPERATIONS.entries()) {
      const { run, problems } = await cutOnce(l, op, { kind: 'end' }, { rng, round });
      expect(run.exitedBeforeCut && run.code, `${op}:\n${run.stderr}`).toBe(0);
      expect(problems, op).toEqual([]);
    }
  });

  // The catalog is where `list` (and the web UI) get protection and verify state from; a command that
  // said it protected or verified a version must find that in the catalog after the power comes back.
  it('protect and verify cut right after they ended: list shows the protection and the verify state they recorded', async () => {
    const l = await newLab(fs);
    const rng = seededRng(11, 0);
    for (let i = 0; i < 2; i++) expect(await uncutBackup(l, '101', rng)).toEqual([]);
    const [first] = l.folders('101');
    const protect = await l.cut(['protect', '101', '--version', String(first), '--store', l.store], { kind: 'end' });
    expect(protect.code, protect.stderr).toBe(0);
    expect(readdirSync(join(l.store, 'guests', '101', String(first)))).toContain('protected');
    const verify = await l.cut(['verify', '--json', '--store', l.store], { kind: 'end' });
    expect(verify.code, verify.stderr).toBe(0);
    const list = await l.run(['list', '101', '--json', '--store', l.store]);
    expect(list.code, list.stderr).toBe(0);
    const shown = (JSON.parse(list.stdout) as Array<{ version: number; protected: boolean; verifyState: string }>).map((v) => [
      v.version,
      v.protected,
      v.verifyState,
    ]);
    expect(shown).toEqual(l.folders('101').map((v) => [v, v === first, 'ok']));
  });

  // A backup killed after writing some chunks leaves them under their final names, their data
  // fdatasynced but their folders not fsynced. The next backup of the same data finds them and only
  // touches them (dedup): its version then depends on names it did not make durable itself.
  it("a chunk a killed backup left before its folder fsync, trusted by the next backup's dedup, survives a power cut after that backup", async () => {
    const l = await newLab(fs);
    const rng = seededRng(8, 0);
    expect(await uncutBackup(l, '101', rng)).toEqual([]);
    l.mutate('101', rng, { fresh: true, disk: 'scsi0' }); // the first disk: its chunks come first
    l.mutate('101', rng, { fresh: true, disk: 'scsi0' });
    const before = chunkNames(l.store);
    l.expectBackup('101');
    // renames of a backup without cold snapshots (each snapshot adds one): its writer registration, the
    // version number it takes (last-version), the staged config, then the chunks: stop after the first chunk's
    const killed = await l.cut([...l.backupArgs('101'), '--snapshot', 'off'], { kind: 'syscall', call: 'rename', nth: 4 }, { power: false });
    expect(killed.exitedBeforeCut, killed.stderr).toBe(false);
    const left = [...chunkNames(l.store)].filter((c) => !before.has(c));
    expect(left.length).toBeGreaterThan(0);

    const version = l.expectBackup('101');
    const { run, problems } = await cutOnceBackup(l);
    expect(run, run.stderr).toMatchObject({ exitedBeforeCut: true, code: 0 });
    expect(problems).toEqual([]);
    expect(l.folders('101')).toContain(version);
    const used = referenced(l.store, '101', version);
    expect(left.filter((c) => used.has(c)).length, 'the new version dedups against the chunks the killed backup left').toBeGreaterThan(0);
    for (const c of left) expect(chunkNames(l.store).has(c), `chunk ${c} after the cut`).toBe(true);
  });

  // gc keeps what a version references, whatever its mtime: a touch that a power cut undid does not matter
  // once the version that uses the chunk is durable; and a version that is not durable does not need it.
  it('a dedup whose touch a power cut undoes: gc still keeps the chunks of the durable version', async () => {
    const l = await newLab(fs);
    const rng = seededRng(9, 0);
    expect(await uncutBackup(l, '101', rng)).toEqual([]);
    l.ageChunks();
    l.syncAll();
    const old = Date.now() - 1_800_000;
    const version = l.expectBackup('101');
    const run = await l.cut(l.backupArgs('101'), { kind: 'end' });
    expect(run, run.stderr).toMatchObject({ exitedBeforeCut: true, code: 0 });
    expect(l.folders('101')).toContain(version);
    const chunks = [...referenced(l.store, '101', version)];
    const stillOld = chunks.filter((c) => statSync(join(l.store, 'chunks', c.slice(0, 4), c)).mtimeMs < old).length;
    console.log(
      `${fs}: after a power cut right after a backup that only deduped, ${stillOld} of its ${chunks.length} chunks have their old mtime again (the touch was lost)`,
    );
    const gc = await l.run(['gc', '--store', l.store, '--json']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(await checkStore(l)).toEqual([]);
    expect(l.folders('101')).toContain(version);
  });
});

/** The next backup of the same data (no new data), cut right at its end, with the store checks. */
async function cutOnceBackup(l: PowerCutLab): Promise<{ run: Awaited<ReturnType<PowerCutLab['cut']>>; problems: string[] }> {
  const run = await l.cut(l.backupArgs('101'), { kind: 'end' });
  return { run, problems: await checkStore(l) };
}

describe('after a power cut and a reboot', () => {
  // A nightly backup runs for a while (its lock file is written back), the power fails, the host
  // boots again. The lock names the dead backup's pid, and after a reboot that pid may belong to any
  // process: the next night's backup must not take it for a running backup and give up (LOCKED).
  it('a lock left by the backup the cut killed does not block the next backup, even when its pid was reused', async () => {
    const l = await newLab('ext4');
    const rng = seededRng(10, 0);
    expect(await uncutBackup(l, '101', rng)).toEqual([]);
    l.mutate('101', rng, { fresh: true, disk: 'scsi0' });
    l.expectBackup('101');
    const run = await l.cut(l.backupArgs('101'), { kind: 'syscall', call: 'rename', nth: 3 }, { writeback: true });
    expect(run.exitedBeforeCut, run.stderr).toBe(false);
    const lockPath = join(l.store, 'locks', 'guest-101.lock');
    const lock = JSON.parse(readFileSync(lockPath, 'utf8')) as Record<string, unknown>;
    expect(lock.pid).toBe(run.pid);
    // The reboot, as the datastore sees it: the boot the lock was taken in is over (a new boot id),
    // and the pid now belongs to a live process (this test's `sleep`, standing in for whatever got it).
    const reused = spawn('sleep', ['300'], { stdio: 'ignore' });
    try {
      writeFileSync(lockPath, JSON.stringify({ ...lock, pid: reused.pid, boot: randomUUID() }));
      l.mutate('101', rng);
      const version = l.expectBackup('101');
      const next = await l.run(l.backupArgs('101'));
      expect(next.code, next.stderr).toBe(0);
      expect(l.folders('101')).toContain(version);
      expect(await checkStore(l)).toEqual([]);
    } finally {
      reused.kill('SIGKILL');
    }
  });
});
