/**
 * Retention and garbage collection through the CLI: `backup --keep N` rotates old versions away,
 * version numbers are never reused, `prune` honours `protect`, `gc` frees exactly the chunks no version
 * references and leaves every remaining version whole, and `gc` is safe while a backup runs.
 */
import { createHash } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, makeLab, REGION, regionBytes, rewriteRegion, spawnCli, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';
import {
  ageChunks,
  backup,
  chunkBytes,
  chunkFiles,
  initStore,
  list,
  ok,
  okJson,
  referencedChunks,
  restore,
  sha256,
  storeFlag,
  versions,
  writeRegions,
} from './cli-lab.js';

interface GcJson {
  referencedChunks: number;
  removedChunks: number;
  removedBytes: number;
  keptUnreferenced: number;
}

let lab: Lab;
beforeAll(async () => {
  lab = makeLab('cv-prune-gc-');
  await initStore(lab);
});
afterAll(() => lab?.cleanup());

describe('backup --keep', () => {
  it('keeps the N newest versions; numbers are never reused, even when the newest folder was deleted', async () => {
    writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
    const disk = imagePath(lab, '101', 'vm-101-disk-0.raw');
    writeImage(disk, ['random', 'zero', 'text'], 1);
    const results = [];
    for (let i = 1; i <= 3; i++) {
      rewriteRegion(disk, 0, 'random', 100 + i);
      results.push(await backup(lab, '101', ['--keep', '2']));
    }
    expect(results.map((r) => r.version)).toEqual([1, 2, 3]);
    expect(results.map((r) => r.pruned)).toEqual([[], [], [1]]);
    expect(await versions(lab, '101')).toEqual([2, 3]);

    const fourth = await backup(lab, '101', ['--keep', '2']);
    expect(fourth.version).toBe(4);
    expect(fourth.pruned).toEqual([2]);
    expect(await versions(lab, '101')).toEqual([3, 4]);

    // an admin deletes the newest version's folder by hand: its number is still not handed out again
    rmSync(join(lab.storeDir, 'guests', '101', '4'), { recursive: true });
    expect(await versions(lab, '101')).toEqual([3]);
    expect((await backup(lab, '101')).version).toBe(5);
    expect(await versions(lab, '101')).toEqual([3, 5]);
  });
});

describe('prune, protect and gc', () => {
  const shas = new Map<number, string>();

  it('prune --keep-last 1 removes all but the newest and the protected; --dry-run removes nothing', async () => {
    writeGuest(lab, '201', [{ key: 'scsi0', file: 'vm-201-disk-0.raw' }]);
    const disk = imagePath(lab, '201', 'vm-201-disk-0.raw');
    writeImage(disk, ['text', 'random', 'zero'], 2, 12345);
    for (let i = 1; i <= 4; i++) {
      rewriteRegion(disk, 1, 'random', 2000 + i); // each version has one chunk of its own
      const r = await backup(lab, '201');
      shas.set(r.version, sha256(disk));
    }
    expect(await versions(lab, '201')).toEqual([1, 2, 3, 4]);
    await ok(['protect', '201', '--version', '2', ...storeFlag(lab)]);
    expect((await list(lab, '201')).map((v) => v.protected)).toEqual([false, true, false, false]);

    const dry = await okJson<{ removed: number[]; dryRun: boolean }>(['prune', '201', '--keep-last', '1', '--dry-run', ...storeFlag(lab)]);
    expect(dry).toMatchObject({ removed: [1, 3], dryRun: true });
    expect(await versions(lab, '201')).toEqual([1, 2, 3, 4]);

    const pruned = await okJson<{ removed: number[] }>(['prune', '201', '--keep-last', '1', ...storeFlag(lab)]);
    expect(pruned.removed).toEqual([1, 3]);
    expect(await versions(lab, '201')).toEqual([2, 4]);
    expect(await versions(lab, '101')).toEqual([3, 5]); // other guests untouched
  });

  it('gc removes exactly the chunks no version references; what remains verifies and restores byte-identical', async () => {
    const before = chunkFiles(lab.storeDir);
    const bytesBefore = chunkBytes(lab.storeDir);
    const referenced = referencedChunks(lab.storeDir);
    const garbage = [...before].filter((c) => !referenced.has(c));
    expect(garbage.length).toBeGreaterThanOrEqual(2 + 2); // the own chunks of 201/1, 201/3, 101/1, 101/2 at least

    ageChunks(lab.storeDir); // the backups ran an hour ago
    const gc = await okJson<GcJson>(['gc', ...storeFlag(lab)]);
    expect(gc.removedChunks).toBe(garbage.length);
    expect(gc.referencedChunks).toBe(referenced.size);
    expect(chunkFiles(lab.storeDir)).toEqual(referenced);
    expect(chunkBytes(lab.storeDir)).toBe(bytesBefore - gc.removedBytes);
    expect(chunkBytes(lab.storeDir)).toBeLessThan(bytesBefore);

    // a second gc has nothing left to do
    expect((await okJson<GcJson>(['gc', ...storeFlag(lab)])).removedChunks).toBe(0);

    const verify = await okJson<{ ok: boolean; versions: unknown[] }>(['verify', ...storeFlag(lab)]);
    expect(verify.ok).toBe(true);
    expect(verify.versions).toHaveLength(4); // 101/3, 101/5, 201/2, 201/4
    for (const version of [2, 4]) {
      const restored = await restore(lab, '201', version, String(400 + version));
      expect(sha256(restored.get('scsi0') as string)).toBe(shas.get(version));
    }
  });

  it('protect --off lets prune remove the version, and gc then frees its chunks', async () => {
    await ok(['protect', '201', '--version', '2', '--off', ...storeFlag(lab)]);
    expect((await okJson<{ removed: number[] }>(['prune', '201', '--keep-last', '1', ...storeFlag(lab)])).removed).toEqual([2]);
    ageChunks(lab.storeDir);
    const gc = await okJson<GcJson>(['gc', ...storeFlag(lab)]);
    expect(gc.removedChunks).toBeGreaterThanOrEqual(1);
    expect(chunkFiles(lab.storeDir)).toEqual(referencedChunks(lab.storeDir));
    expect((await okJson<{ ok: boolean }>(['verify', '201', ...storeFlag(lab)])).ok).toBe(true);
  });
});

describe('gc while a backup runs', () => {
  it('never takes a chunk the running backup relies on: the new version verifies and restores byte-identical', async () => {
    // 301 version 1 holds the "old" regions; version 2 replaces them; prune drops version 1: its chunks are garbage.
    writeGuest(lab, '301', [{ key: 'scsi0', file: 'vm-301-disk-0.raw' }]);
    const disk301 = imagePath(lab, '301', 'vm-301-disk-0.raw');
    const old = Array.from({ length: 4 }, (_, i) => ({ kind: 'random' as const, seed: 30_100 + i }));
    writeRegions(disk301, old);
    await backup(lab, '301');
    writeRegions(disk301, [{ kind: 'text', seed: 30_200 }]);
    await backup(lab, '301');
    await ok(['prune', '301', '--keep-last', '1', ...storeFlag(lab)]);
    ageChunks(lab.storeDir);
    const oldChunks = old.map((r) => createHash('sha256').update(regionBytes(r.kind, r.seed)).digest('hex'));
    const present = chunkFiles(lab.storeDir);
    expect(oldChunks.every((c) => present.has(c) && !referencedChunks(lab.storeDir).has(c))).toBe(true);

    // 302's disk: two old regions first (the backup dedups them at once), then new random regions (slow to
    // write at zstd level 19, more than the backup has in flight), then the other two old regions (reached while gc runs).
    writeGuest(lab, '302', [{ key: 'scsi0', file: 'vm-302-disk-0.raw' }]);
    const disk302 = imagePath(lab, '302', 'vm-302-disk-0.raw');
    const fresh = Array.from({ length: 7 }, (_, i) => ({ kind: 'random' as const, seed: 30_300 + i }));
    writeRegions(disk302, [old[0], old[1], ...fresh, old[2], old[3]] as typeof old);
    const want = sha256(disk302);

    const started = Date.now();
    const child = spawnCli(['backup', '302', ...lab.flags, '--zstd-level', '19', '--json']);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    let running = true;
    void exited.then(() => (running = false));

    // wait until the backup has deduplicated (touched) the first old chunk, then run gc again and again
    const firstOld = join(lab.storeDir, 'chunks', (oldChunks[0] as string).slice(0, 4), oldChunks[0] as string);
    while (running && statSync(firstOld).mtimeMs < started - 1000) await new Promise((r) => setTimeout(r, 5));
    let gcsDuringBackup = 0;
    let removedDuringBackup = 0;
    while (running) {
      const r = await cli(['gc', ...storeFlag(lab), '--json']);
      expect(r.code, r.stderr).toBe(0);
      if (running) {
        gcsDuringBackup++;
        removedDuringBackup += (JSON.parse(r.stdout) as GcJson).removedChunks;
      }
      await new Promise((resolve) => setTimeout(resolve, 100)); // leave the backup some CPU
    }
    expect(await exited, stderr).toBe(0);
    expect(gcsDuringBackup).toBeGreaterThanOrEqual(3);
    // gc did sweep old chunks the backup had not reached yet (it writes them again), so the race was real
    expect(removedDuringBackup).toBeGreaterThan(0);

    const [result] = JSON.parse(stdout) as Array<{ version: number; size: number; newBytes: number }>;
    expect(result?.version).toBe(1);
    // the two old chunks deduplicated before gc started were not written again: gc left them alone
    expect(result!.size - result!.newBytes).toBeGreaterThanOrEqual(2 * REGION);
    // every chunk the new version references is in the store, and each one is sound
    const after = chunkFiles(lab.storeDir);
    for (const c of referencedChunks(lab.storeDir)) expect(after.has(c), `chunk ${c} is missing`).toBe(true);
    const verify = await okJson<{ ok: boolean; badChunks: unknown[] }>(['verify', '302', ...storeFlag(lab)]);
    expect(verify).toMatchObject({ ok: true, badChunks: [] });
    const restored = await restore(lab, '302', 1, '502');
    expect(sha256(restored.get('scsi0') as string)).toBe(want);

    // and a gc after the backup keeps the new version whole
    ageChunks(lab.storeDir);
    await ok(['gc', ...storeFlag(lab)]);
    expect((await okJson<{ ok: boolean }>(['verify', ...storeFlag(lab)])).ok).toBe(true);
  });
});
