/**
 * The changed-extent nightly backup on a real XFS with reflink (loop device), through the engine's
 * backupGuest with read plans for reflink snapshots (nightly-lab.ts), as the job flow with cold
 * snapshots runs it:
 *  - ten nightlies with random 4 MiB writes, sub-chunk writes and a write past the end (a resize) in
 *    between: each reads exactly the chunks written since the snapshot before (from the backup's own
 *    counters), takes the others from the base, and every version restores byte-identical to its
 *    snapshot; verify finds every version whole;
 *  - any doubt means a full read, with one log line saying why, and a correct version: a base
 *    snapshot replaced by hand, a source disk replaced by another file, a damaged or missing base
 *    record, `full`, `fullEvery`, a base version pruned, a base on another filesystem than the
 *    snapshot, FIEMAP refused (tmpfs), no native addon (the built engine copied without it);
 *  - a chunk the base's index names, removed by a gc (all versions pruned, the chunk aged) while the
 *    nightly runs: that chunk is read from the snapshot instead, and the version restores.
 */
import { copyFileSync, cpSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datastore, collectGarbage } from '../../dist/datastore/index.js';
import { WorkerPool, writeBaseRecord, readBaseRecord } from '../../dist/pipeline/index.js';
import { createTaskLog } from '../../dist/core/index.js';
import { prng, REPO, regionBytes } from '../helpers/fixtures.js';
import { CHUNK, NightlyLab, type Nightly, type NightlyOptions } from './nightly-lab.js';
import { ReflinkFs } from './reflink-lab.js';

let fs: ReflinkFs;
let pool: WorkerPool;
beforeAll(() => {
  fs = ReflinkFs.create(3072, 'cv-nightly-');
  pool = new WorkerPool(2);
});
afterAll(async () => {
  await pool?.close();
  fs?.destroy();
});

let guestIds = 300;
let seeds = 1;
const data = (length: number): Buffer => regionBytes('random', 5000 + seeds++, length);

/** A guest with a 20.x-chunk disk holding data in 14 chunks, and its first (full) nightly. */
async function labWithFirstNightly(): Promise<{ lab: NightlyLab; first: Nightly }> {
  const lab = await NightlyLab.create(fs, pool, String(guestIds++), 20 * CHUNK + 12345);
  for (const c of [0, 1, 2, 3, 5, 6, 8, 9, 10, 11, 13, 15, 16, 18]) lab.write(c * CHUNK, data(CHUNK));
  lab.write(20 * CHUNK, data(12345)); // the short last chunk
  const first = await lab.nightly();
  expect(first.read.baseVersion).toBeUndefined();
  expect(first.read.fileReadBytes).toBe(lab.bytesOf(first.allocated));
  return { lab, first };
}

function expectBaseUsed(lab: NightlyLab, n: Nightly, baseVersion: number): void {
  expect(n.read.fullReason).toBeUndefined();
  expect(n.read.baseVersion).toBe(baseVersion);
  expect(n.read.fileReadBytes).toBe(lab.bytesOf(n.changed));
  expect(n.read.baseBytes).toBe(lab.bytesOf([...n.allocated].filter((c) => !n.changed.has(c))));
  expect(n.lines).toContainEqual(expect.stringContaining(`disk 'scsi0': changed since the base (version ${baseVersion}): read `));
}

/** Moves the base (and its record) to `dir`, as if it had been kept there. */
async function moveBase(lab: NightlyLab, dir: string): Promise<void> {
  const record = (await readBaseRecord(lab.base?.path as string)).record;
  if (!record || !lab.base) throw new Error('no base record');
  const moved = join(dir, 'scsi0.base-moved');
  rmSync(moved, { force: true });
  copyFileSync(lab.base.path, moved);
  await writeBaseRecord({ ...record, snapshotPath: moved });
  lab.base = { ...lab.base, path: moved };
}

async function expectFullRead(lab: NightlyLab, n: Nightly, reason: RegExp, readBytes = lab.bytesOf(n.allocated)): Promise<void> {
  expect(n.read.baseVersion).toBeUndefined();
  expect(n.read.fullReason).toMatch(reason);
  expect(n.lines.filter((l) => l.startsWith(`disk 'scsi0': reading every chunk: `))).toEqual([`disk 'scsi0': reading every chunk: ${n.read.fullReason}`]);
  expect(n.read.fileReadBytes).toBe(readBytes);
  expect(n.read.baseBytes).toBe(0);
  expect(await lab.restoreSha(n.version)).toBe(n.sha);
}

describe('changed-extent nightly backups on XFS with reflink', () => {
  it('ten nightlies read what changed, and every version restores as its snapshot was', async () => {
    const { lab, first } = await labWithFirstNightly();
    const nightlies = [first];
    const rnd = prng(20261128);
    for (let night = 2; night <= 10; night++) {
      const size = lab.size;
      for (let w = 1 + (rnd() % 3); w > 0; w--) {
        const aligned = rnd() % 2 === 0;
        const at = aligned ? (rnd() % ((size - CHUNK) / 4096)) * 4096 : rnd() % (size - CHUNK);
        lab.write(at, data(CHUNK)); // a 4 MiB write: one chunk, or across two
      }
      if (night % 3 === 0) lab.write(rnd() % size, data(1 + (rnd() % 70_000))); // a sub-chunk write
      const resized = night === 6;
      if (resized) lab.write(size + CHUNK + 777, data(5000)); // past the end: the disk grows
      const before = nightlies.at(-1) as Nightly;
      const n = await lab.nightly();
      if (resized) await expectFullRead(lab, n, /^the disk was resized: \d+ bytes now, \d+ at the base$/);
      else expectBaseUsed(lab, n, before.version);
      nightlies.push(n);
    }
    expect(nightlies.filter((n) => n.read.baseVersion !== undefined).length).toBe(8);
    for (const n of nightlies) expect(await lab.restoreSha(n.version)).toBe(n.sha);
    expect(await lab.verify()).toEqual({ ok: true, errors: [] });
  });

  it('an unchanged disk is not read at all, and the next base continues the chain of the last full read', async () => {
    const { lab, first } = await labWithFirstNightly();
    const n = await lab.nightly();
    expectBaseUsed(lab, n, first.version);
    expect(n.read.fileReadBytes).toBe(0);
    expect(n.read.nextBase?.lastFullRead).toBe(first.read.nextBase?.lastFullRead);
    expect(await lab.restoreSha(n.version)).toBe(n.sha);
  });

  it('a base snapshot replaced by hand (another inode, cloned from the disk as it is now): a full read', async () => {
    const { lab } = await labWithFirstNightly();
    lab.write(2 * CHUNK + 4096, data(8192));
    const base = lab.base?.path as string;
    rmSync(base);
    ReflinkFs.clone(lab.diskPath, base); // shares every block with the disk now: only the record tells it is not the base
    await expectFullRead(lab, await lab.nightly(), /^the base snapshot '.*' was replaced \(inode \d+, recorded \d+\)$/);
  });

  it('a source disk replaced by another file: a full read', async () => {
    const { lab } = await labWithFirstNightly();
    const copy = `${lab.diskPath}.new`;
    ReflinkFs.clone(lab.diskPath, copy);
    rmSync(lab.diskPath);
    copyFileSync(copy, lab.diskPath);
    rmSync(copy);
    await expectFullRead(lab, await lab.nightly(), /^the disk '.*' is another file than at the base \(device \d+ inode \d+, recorded \d+\/\d+\)$/);
  });

  it('a damaged or missing base record: a full read', async () => {
    const { lab } = await labWithFirstNightly();
    const record = `${lab.base?.path as string}.base.json`;
    writeFileSync(record, '{"format": 1, "version": "x"');
    await expectFullRead(lab, await lab.nightly(), /^its record '.*\.base\.json' is damaged: not JSON$/);
    const parsed = await readBaseRecord(lab.base?.path as string);
    writeFileSync(record, JSON.stringify({ ...parsed.record, version: 0 }));
    await expectFullRead(lab, await lab.nightly(), /is damaged: version must be a version number$/);
    rmSync(record);
    await expectFullRead(lab, await lab.nightly(), /^the base snapshot has no record \('.*' is missing\)$/);
  });

  it('full, and fullEvery: a full read, which starts a new chain', async () => {
    const { lab, first } = await labWithFirstNightly();
    lab.write(CHUNK, data(CHUNK));
    await expectFullRead(lab, await lab.nightly({ full: true }), /^a full read was asked for$/);
    const n = await lab.nightly({ fullEvery: 0 });
    await expectFullRead(lab, n, /^the last full read was 0\.\d days ago \(fullEvery 0\)$/);
    expect(n.read.nextBase?.lastFullRead).not.toBe(first.read.nextBase?.lastFullRead);
    expect(n.read.nextBase?.lastFullRead).toBe(n.read.nextBase?.created);
    expectBaseUsed(lab, await lab.nightly({ fullEvery: 7 }), n.version);
  });

  it('a base version pruned: a full read', async () => {
    const { lab, first } = await labWithFirstNightly();
    await (await Datastore.open(lab.storeDir)).removeVersion(lab.id, first.version);
    await expectFullRead(lab, await lab.nightly(), new RegExp(`^the base version ${first.version} or its index cannot be read: `));
  });

  it('a base on another filesystem than the snapshot, and FIEMAP refused (both on tmpfs): a full read', async () => {
    const { lab } = await labWithFirstNightly();
    const shm = mkdtempSync('/dev/shm/cv-nightly-');
    try {
      await moveBase(lab, shm);
      await expectFullRead(lab, await lab.nightly(), /^the snapshot '.*' is on another filesystem than the base \(device \d+, base \d+\)$/);
      await moveBase(lab, shm);
      const n = await lab.nightly({ snapshotDir: shm }); // a copy (tmpfs has no reflink, nor FIEMAP), holes written as zeros: all read
      await expectFullRead(lab, n, /^FIEMAP was refused on '\/dev\/shm\/.*': EOPNOTSUPP$/, lab.size);
    } finally {
      rmSync(shm, { recursive: true, force: true });
    }
  });

  it('without the native addon (no FIEMAP): a full read', async () => {
    const { lab } = await labWithFirstNightly();
    const engine = mkdtempSync(join(tmpdir(), 'cv-no-addon-')); // the built engine without build/Release
    try {
      cpSync(join(REPO, 'dist'), join(engine, 'dist'), { recursive: true });
      copyFileSync(join(REPO, 'package.json'), join(engine, 'package.json'));
      symlinkSync(join(REPO, 'node_modules'), join(engine, 'node_modules'));
      const { backupGuest } = (await import(pathToFileURL(join(engine, 'dist/pipeline/index.js')).href)) as { backupGuest: NightlyOptions['backupGuest'] };
      const n = await lab.nightly({ backupGuest });
      await expectFullRead(lab, n, /^the native addon \(FIEMAP\) is not built$/, lab.size); // no hole detection either: every chunk read
    } finally {
      rmSync(engine, { recursive: true, force: true });
    }
  });

  it('a chunk the base index names, removed by a gc while the nightly runs, is read from the snapshot', async () => {
    const { lab, first } = await labWithFirstNightly();
    lab.write(9 * CHUNK + 100, data(3000));
    const store = await Datastore.open(lab.storeDir);
    const index = await store.readIndex(lab.id, first.version, 'scsi0.fidx');
    const victim = (index.digests[5] as Buffer).toString('hex'); // chunk 5: unchanged since the base
    let removed = 0;
    const seams = {
      checkpoint: async (step: string): Promise<void> => {
        if (step !== 'backup:base-read') return;
        for (const v of await store.listVersionNumbers(lab.id)) await store.removeVersion(lab.id, v); // pruned
        const now = new Date();
        for (const dir of readdirSync(join(lab.storeDir, 'chunks'))) {
          for (const name of readdirSync(join(lab.storeDir, 'chunks', dir))) {
            const old = name === victim ? new Date(Date.now() - 3_600_000) : now; // only the victim is old enough to go
            utimesSync(join(lab.storeDir, 'chunks', dir, name), old, old);
          }
        }
        removed = (await collectGarbage(store, createTaskLog())).removedChunks;
      },
    };
    const n = await lab.nightly({ seams });
    expect(removed).toBe(1);
    expect(n.read.baseVersion).toBe(first.version);
    expect(n.read.fileReadBytes).toBe(lab.bytesOf([...n.changed, 5]));
    expect(n.lines).toContainEqual(expect.stringMatching(/changed since the base .*; 1 chunk\(s\) of the base were gone from the store and were read$/));
    expect(await lab.restoreSha(n.version)).toBe(n.sha);
    expect(await lab.verify()).toEqual({ ok: true, errors: [] });
  });
});
