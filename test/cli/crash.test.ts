/**
 * kill -9 at random moments of a backup and of a restore (the real CLI, a real process): whatever the
 * moment, the datastore shows only complete versions, verifies clean, and takes the next backup; a
 * killed restore never leaves a config or a volume under its final name.
 *
 * The kill delays come from a seeded PRNG; the seed is printed (set CV_CRASH_SEED to choose it).
 */
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cli,
  imagePath,
  makeLab,
  prng,
  REGION,
  rewriteRegion,
  sha256File,
  spawnCli,
  writeGuest,
  writeImage,
  type Lab,
  type Region,
} from '../helpers/fixtures.js';
import { backup, filesUnder, initStore, listJson, ok, restoreArgs, sleep, storeFlag, waitExit } from './cli-lab.js';

const SEED = Number(process.env.CV_CRASH_SEED ?? Date.now() % 2_147_483_647) >>> 0 || 1;
const BACKUP_KILLS = 20;
const RESTORE_KILLS = 5;
// 64 MiB of random and log-like text: every chunk is hashed, compressed and written.
const REGIONS: Region[] = Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? 'random' : 'text'));
const BACKUP_FLAGS = ['--compress', 'zstd', '--zstd-level', '3', '--keep', '3'];

let lab: Lab;
let disk: string;
const rand = prng(SEED);
/** A delay in [lo, hi) ms from the seeded PRNG. */
const delay = (lo: number, hi: number): number => lo + (rand() % Math.max(1, Math.round(hi - lo)));

beforeAll(async () => {
  console.log(`crash.test.ts: CV_CRASH_SEED=${SEED}`);
  lab = makeLab('cv-crash-');
  writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
  disk = imagePath(lab, '101', 'vm-101-disk-0.raw');
  writeImage(disk, REGIONS, 51);
  await initStore(lab);
});
afterAll(() => lab?.cleanup());

/** Runs the CLI as a child, kills it with SIGKILL after `ms` (unless it ended first). */
async function runAndKill(args: string[], ms: number): Promise<{ killed: boolean; code: number | null; stderr: string }> {
  const child = spawnCli(args);
  const exited = waitExit(child);
  const raced = await Promise.race([exited.then(() => 'exited' as const), sleep(ms).then(() => 'timeout' as const)]);
  if (raced === 'timeout') child.kill('SIGKILL');
  const r = await exited;
  return { killed: r.signal === 'SIGKILL', code: r.code, stderr: r.stderr };
}

/**
 * Lock files are linked in whole where the filesystem has hard links (ext4 here), so a kill leaves
 * none empty; on a filesystem without hard links (exFAT) an empty one counts as held for 30 s
 * (locks.ts unreadableHolder). Should one appear, it is backdated so the crash test can go on, and
 * counted in the log line.
 */
let emptyLocks = 0;
function ageEmptyLocks(): void {
  const dir = join(lab.storeDir, 'locks');
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.lock'))) {
    const path = join(dir, name);
    if (statSync(path).size !== 0) continue;
    emptyLocks++;
    const past = new Date(Date.now() - 60_000);
    utimesSync(path, past, past);
  }
}

async function timed(args: string[]): Promise<number> {
  const t = Date.now();
  await ok(args);
  return Date.now() - t;
}

/** The store shows only whole versions: every numeric folder is complete, and list shows exactly those. */
async function expectOnlyCompleteVersions(context: string): Promise<number[]> {
  const guestDir = join(lab.storeDir, 'guests', '101');
  const folders = existsSync(guestDir)
    ? readdirSync(guestDir)
        .filter((n) => /^[0-9]+$/.test(n))
        .map(Number)
        .sort((a, b) => a - b)
    : [];
  for (const v of folders) {
    const dir = join(guestDir, String(v));
    const manifestPath = join(dir, 'manifest.json');
    expect(existsSync(manifestPath), `${context}: version ${v} has no manifest.json`).toBe(true);
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { version: number; disks: Array<{ index: string }> };
    expect(manifest.version).toBe(v);
    expect(manifest.disks.length).toBe(1);
    for (const d of manifest.disks) expect(existsSync(join(dir, d.index)), `${context}: version ${v} lacks ${d.index}`).toBe(true);
  }
  const listed = (await listJson(lab)).filter((x) => x.id === '101');
  expect(
    listed.map((x) => x.version),
    context,
  ).toEqual(folders);
  for (const x of listed) expect(x.disks.map((d) => d.size)).toEqual([REGIONS.length * REGION]);
  return folders;
}

describe('kill -9 during backup', () => {
  // The user relies on a crash (power cut, OOM kill) never leaving a half version that looks whole,
  // never damaging older versions, and never blocking the next night's backup.
  it(`leaves only complete versions, a clean verify, and a working next backup (${BACKUP_KILLS} kills)`, async () => {
    // the typical duration of a run, from the runs that finish (the first one, then an average)
    let typical = await timed(['backup', '101', ...lab.flags, ...BACKUP_FLAGS]);
    console.log(`crash.test.ts: a full backup takes ${typical} ms`);
    let killed = 0;
    let round = 0;
    // runs that finish before their kill count too (they test the end of a backup), but we go on
    // until BACKUP_KILLS runs were really killed (at most 2x as many rounds)
    for (; killed < BACKUP_KILLS && round < 2 * BACKUP_KILLS; round++) {
      // new data in a few regions, so that every run has chunks to compress and write
      for (let k = 0; k < 4; k++) rewriteRegion(disk, (round * 4 + k) % REGIONS.length, k % 2 === 0 ? 'random' : 'text', SEED + round * 10 + k);
      const ms = delay(50, typical * 1.15);
      const started = Date.now();
      const r = await runAndKill(['backup', '101', ...lab.flags, ...BACKUP_FLAGS], ms);
      if (!r.killed) typical = Math.round((typical + (Date.now() - started)) / 2);
      else ageEmptyLocks();
      if (r.killed) killed++;
      else expect(r.code, `round ${round}: the backup ended by itself with an error\n${r.stderr}`).toBe(0);
      const context = `round ${round} (seed ${SEED}, kill after ${ms} ms, ${r.killed ? 'killed' : 'finished'})`;
      const [, verify] = await Promise.all([expectOnlyCompleteVersions(context), cli(['verify', '--json', ...storeFlag(lab)])]);
      expect(verify.code, `${context}: verify failed\n${verify.stdout}${verify.stderr}`).toBe(0);
    }
    console.log(
      `crash.test.ts: ${killed} of ${round} backups were killed; versions now ${JSON.stringify((await listJson(lab)).map((x) => x.version))}; ${emptyLocks} empty lock file(s) left by a kill`,
    );
    expect(killed).toBe(BACKUP_KILLS);

    // After the crashes: a backup succeeds, cleans up the dead runs' staging folders, and restores exactly.
    const b = await backup(lab, '101', BACKUP_FLAGS);
    await expectOnlyCompleteVersions('after the final backup');
    expect(readdirSync(join(lab.storeDir, 'guests', '101')).filter((n) => n.startsWith('.staging-'))).toEqual([]);
    await ok(restoreArgs(lab, '101', b.version, '500'));
    expect(sha256File(imagePath(lab, '500', 'vm-500-disk-0.raw'))).toBe(sha256File(disk));
    // gc removes the dead writers' temp chunk files and nothing a version needs
    await ok(['gc', ...storeFlag(lab)]);
    expect(filesUnder(join(lab.storeDir, 'chunks')).filter((f) => f.includes('.cvtmp-'))).toEqual([]);
    const verify = await cli(['verify', ...storeFlag(lab)]);
    expect(verify.code, verify.stderr).toBe(0);
  });
});

describe('kill -9 during restore', () => {
  // A killed restore must not leave a guest that looks restored (a config) or a volume under its
  // final name that holds half a disk; temp files (`*.cvtmp-*`) of the dead process may remain.
  it(`never leaves <new>.conf or a final-named volume without a finished restore (${RESTORE_KILLS} kills)`, async () => {
    const { version } = await backup(lab, '101', BACKUP_FLAGS);
    const expected = sha256File(disk);
    const typical = await timed(restoreArgs(lab, '101', version, '600'));
    console.log(`crash.test.ts: a full restore takes ${typical} ms`);
    let killed = 0;
    let round = 0;
    for (; killed < RESTORE_KILLS && round < 3 * RESTORE_KILLS; round++) {
      const newId = String(601 + round);
      const ms = delay(50, typical * 1.1);
      const r = await runAndKill(restoreArgs(lab, '101', version, newId), ms);
      const context = `restore round ${round} (seed ${SEED}, kill after ${ms} ms, ${r.killed ? 'killed' : 'finished'})`;
      if (r.killed) killed++;
      else expect(r.code, `${context}\n${r.stderr}`).toBe(0);
      const conf = existsSync(join(lab.guestsDir, `${newId}.conf`));
      const volume = imagePath(lab, newId, `vm-${newId}-disk-0.raw`);
      if (conf) {
        expect(sha256File(volume), context).toBe(expected);
      } else {
        expect(existsSync(volume), `${context}: a volume with its final name exists, but no config`).toBe(false);
        for (const f of filesUnder(join(lab.storageDir, 'images', newId))) expect(f, context).toMatch(/\.cvtmp-\d+-[0-9a-f]+$/);
      }
    }
    console.log(`crash.test.ts: ${killed} of ${round} restores were killed`);
    expect(killed).toBe(RESTORE_KILLS);
    // a new restore to a killed restore's ID cleans up after it: the volume is disk-0 again and no
    // temp file of the dead process remains
    for (let r = 0; r < round; r++) {
      const newId = String(601 + r);
      if (existsSync(join(lab.guestsDir, `${newId}.conf`))) continue;
      await ok(restoreArgs(lab, '101', version, newId));
      expect(sha256File(imagePath(lab, newId, `vm-${newId}-disk-0.raw`))).toBe(expected);
      expect(filesUnder(join(lab.storageDir, 'images', newId)).filter((f) => f.includes('.cvtmp-'))).toEqual([]);
    }
    // and a restore after all that succeeds byte-identical
    await ok(restoreArgs(lab, '101', version, '700'));
    expect(sha256File(imagePath(lab, '700', 'vm-700-disk-0.raw'))).toBe(expected);
  });

  // The same guarantee for a restore that fails at its very last step (the config cannot be written):
  // the disks were already renamed to their final names and stay behind without a config.
  it('a restore that fails writing the config leaves no final-named volume behind', async () => {
    const version = (await listJson(lab)).filter((x) => x.id === '101').at(-1)?.version ?? 0;
    const notADir = join(lab.root, 'guests-is-a-file');
    writeFileSync(notADir, 'x');
    const args = [
      'restore',
      '101',
      '--version',
      String(version),
      '--new-id',
      '800',
      '--store',
      lab.storeDir,
      '--guests-dir',
      join(notADir, 'sub'),
      '--storage',
      `local=${lab.storageDir}`,
    ];
    const r = await cli(args);
    expect(r.code).toBe(1);
    expect(filesUnder(join(lab.storageDir, 'images', '800'))).toEqual([]);
  });
});
