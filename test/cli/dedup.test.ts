/**
 * Deduplication through the real CLI: a nightly backup of a disk that barely changed costs about the
 * changed data in the store, an unchanged one costs nothing, and identical disks are stored once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagePath, makeLab, REGION, rewriteRegion, writeGuest, writeImage, type Lab, type Region } from '../helpers/fixtures.js';
import { backup, chunkBytes, chunkFileList, initStore, listJson } from './cli-lab.js';

const REGIONS: Region[] = ['random', 'text', 'zero', 'random', 'text', 'zero', 'random', 'text', 'zero', 'text'];
/** Room for the blob header of a chunk (12 bytes) and nothing else: chunks are the only thing counted. */
const OVERHEAD = 4096;

describe('deduplication', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = makeLab('cv-dedup-');
    await initStore(lab);
  });
  afterAll(() => lab?.cleanup());

  // The user relies on incremental cost: one changed 4 MiB region adds about one chunk, not a disk.
  it('a backup after one changed region adds about one chunk; an unchanged one adds none', async () => {
    writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
    const disk = imagePath(lab, '101', 'vm-101-disk-0.raw');
    writeImage(disk, REGIONS, 21);

    const b1 = await backup(lab, '101');
    const size1 = chunkBytes(lab.storeDir);
    const nonZero = REGIONS.filter((r) => r !== 'zero').length;
    expect(chunkFileList(lab.storeDir)).toHaveLength(nonZero);
    expect(b1.newBytes).toBe(nonZero * REGION);
    expect(b1.storedBytes).toBe(size1);

    rewriteRegion(disk, 3, 'random', 777_001);
    const b2 = await backup(lab, '101');
    const size2 = chunkBytes(lab.storeDir);
    const growth = size2 - size1;
    expect(growth).toBeGreaterThan(0);
    expect(growth).toBeLessThanOrEqual(REGION + OVERHEAD);
    expect(chunkFileList(lab.storeDir)).toHaveLength(nonZero + 1);
    // the backup's own report agrees with what the store grew by
    expect(b2.version).toBe(b1.version + 1);
    expect(b2.newBytes).toBe(REGION);
    expect(b2.storedBytes).toBe(growth);

    const files2 = chunkFileList(lab.storeDir)
      .map((c) => c.hex)
      .sort();
    const b3 = await backup(lab, '101');
    expect(
      chunkFileList(lab.storeDir)
        .map((c) => c.hex)
        .sort(),
    ).toEqual(files2);
    expect(chunkBytes(lab.storeDir)).toBe(size2);
    expect(b3.newBytes).toBe(0);
    expect(b3.storedBytes).toBe(0);

    // list reports the same per-version costs
    const listed = await listJson(lab);
    expect(listed.filter((v) => v.id === '101').map((v) => [v.version, v.newBytes, v.storedBytes])).toEqual([
      [b1.version, b1.newBytes, b1.storedBytes],
      [b2.version, b2.newBytes, b2.storedBytes],
      [b3.version, 0, 0],
    ]);
  });

  // Many guests cloned from one template: their common data is stored once.
  it('two guests with identical disks share chunks', async () => {
    writeGuest(lab, '110', [{ key: 'scsi0', file: 'vm-110-disk-0.raw' }]);
    writeGuest(lab, '111', [{ key: 'virtio0', file: 'vm-111-disk-0.raw' }]);
    writeImage(imagePath(lab, '110', 'vm-110-disk-0.raw'), REGIONS, 31);
    writeImage(imagePath(lab, '111', 'vm-111-disk-0.raw'), REGIONS, 31);

    const before = chunkBytes(lab.storeDir);
    const first = await backup(lab, '110');
    const afterFirst = chunkBytes(lab.storeDir);
    expect(afterFirst - before).toBeGreaterThan(0);
    expect(first.storedBytes).toBe(afterFirst - before);

    const files = chunkFileList(lab.storeDir).length;
    const second = await backup(lab, '111');
    expect(chunkFileList(lab.storeDir)).toHaveLength(files);
    expect(chunkBytes(lab.storeDir) - afterFirst).toBe(0);
    expect(second.newBytes).toBe(0);
    expect(second.storedBytes).toBe(0);
  });
});
