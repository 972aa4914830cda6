/**
 * Restored disks and new chunks are written with O_DIRECT where the filesystem allows it
 * (src/pipeline/direct-io.ts, src/datastore/durable.ts writeFileDirect): the bytes must be the same as
 * through the page cache, holes must stay holes, the short last chunk of an odd-sized image and blobs
 * of odd lengths must land too, and neither a backup nor a restore may fill the page cache with what
 * it wrote. Real files on the test machine's ext4 (/tmp), real backups and restores through the CLI.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copyBytes, directAligned } from '../../src/core/index.js';
import { ChunkStore, writeFileDirect } from '../../src/datastore/index.js';
import { alignedOffset, DIRECT_ALIGN, DiskImageWriter } from '../../src/pipeline/direct-io.js';
import { cli, imagePath, makeLab, regionBytes, REGION, sha256File, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';

let lab: Lab | undefined;
afterEach(() => lab?.cleanup());

/** A buffer whose view at `offset` starts on a DIRECT_ALIGN boundary, holding `data`. */
function alignedCopy(data: Buffer): Uint8Array {
  const buf = new ArrayBuffer(data.length + DIRECT_ALIGN);
  const view = new Uint8Array(buf, alignedOffset(buf), data.length);
  view.set(data);
  return view;
}

function residentPages(path: string): number {
  const out = execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' });
  return Number(out.trim());
}

describe('DiskImageWriter', () => {
  it('writes aligned chunks directly, the odd tail through the page cache, and leaves holes', async () => {
    lab = makeLab('cv-direct-');
    const path = join(lab.root, 'disk.raw');
    const a = regionBytes('random', 1);
    const b = regionBytes('text', 2);
    const tail = regionBytes('random', 3, 1000);
    const size = 3 * REGION + tail.length;
    const w = await DiskImageWriter.create(path);
    try {
      expect(w.direct).toBe(true);
      await w.truncate(size);
      await w.write(alignedCopy(a), 0);
      await w.write(alignedCopy(b), 2 * REGION);
      await w.write(alignedCopy(tail), 3 * REGION);
      expect(w.direct).toBe(true);
      await w.sync();
    } finally {
      await w.close();
    }
    const got = readFileSync(path);
    expect(got.length).toBe(size);
    expect(got.subarray(0, REGION).equals(a)).toBe(true);
    expect(got.subarray(REGION, 2 * REGION).equals(Buffer.alloc(REGION))).toBe(true);
    expect(got.subarray(2 * REGION, 3 * REGION).equals(b)).toBe(true);
    expect(got.subarray(3 * REGION).equals(tail)).toBe(true);
    expect(statSync(path).blocks * 512).toBeLessThan(size - REGION / 2); // the hole is not allocated
  });

  it('takes unaligned buffers through the page cache, with the same bytes', async () => {
    lab = makeLab('cv-direct-');
    const path = join(lab.root, 'disk.raw');
    const data = regionBytes('text', 4);
    const unaligned = new Uint8Array(new ArrayBuffer(REGION + DIRECT_ALIGN), alignedOffset(new ArrayBuffer(8)) + 1, REGION);
    unaligned.set(data);
    const w = await DiskImageWriter.create(path);
    await w.write(unaligned, 0);
    await w.sync();
    await w.close();
    expect(readFileSync(path).equals(data)).toBe(true);
  });

  it('refuses to overwrite an existing file', async () => {
    lab = makeLab('cv-direct-');
    const path = join(lab.root, 'disk.raw');
    await (await DiskImageWriter.create(path)).close();
    await expect(DiskImageWriter.create(path)).rejects.toMatchObject({ code: 'IO' });
  });
});

describe('restore through O_DIRECT', () => {
  it('restores byte-identical without filling the page cache with the restored disk', async () => {
    lab = makeLab('cv-direct-');
    writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
    writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), ['random', 'zero', 'text', 'random', 'text', 'text', 'random', 'random'], 7, 12345);
    const base = lab.flags;
    expect((await cli(['datastore', 'init', lab.storeDir])).code).toBe(0);
    expect((await cli(['backup', '101', ...base])).code).toBe(0);
    const r = await cli(['restore', '101', '--version', '1', '--new-id', '201', ...base]);
    expect(r.code, r.stderr).toBe(0);
    const restored = imagePath(lab, '201', 'vm-201-disk-0.raw');
    const written = 7 * REGION + 12345;
    // through the page cache, all of it would be resident now; O_DIRECT leaves at most the short tail
    expect(residentPages(restored)).toBeLessThan(written / 10);
    expect(sha256File(restored)).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
  });
});

describe('chunks through O_DIRECT', () => {
  it('writeFileDirect writes blobs of odd lengths byte-exact, padded blocks cut off', async () => {
    lab = makeLab('cv-direct-');
    for (const length of [1, 4095, 4096, 4097, 2_500_001]) {
      const data = regionBytes('random', length, length);
      const buf = new ArrayBuffer(length + 2 * DIRECT_ALIGN);
      const view = new Uint8Array(buf, alignedOffset(buf), length);
      view.set(data);
      const path = join(lab.root, `blob-${length}`);
      expect(await writeFileDirect(path, view, 'test')).toBe(true);
      expect(readFileSync(path).equals(data), `length ${length}`).toBe(true);
    }
    expect(readdirSync(lab.root).filter((n) => n.includes('.cvtmp-'))).toEqual([]);
  });

  it('a backup leaves the chunks it wrote out of the page cache, and they verify', async () => {
    lab = makeLab('cv-direct-');
    writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
    writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), ['random', 'text', 'random', 'text', 'text'], 9, 777);
    expect((await cli(['datastore', 'init', lab.storeDir])).code).toBe(0);
    expect((await cli(['backup', '101', ...lab.flags])).code).toBe(0);
    const chunkDir = join(lab.storeDir, 'chunks');
    const files = readdirSync(chunkDir).flatMap((d) => readdirSync(join(chunkDir, d)).map((f) => join(chunkDir, d, f)));
    expect(files.length).toBe(6);
    const stored = files.reduce((sum, f) => sum + statSync(f).size, 0);
    // through the page cache every byte would be resident now; O_DIRECT leaves at most a partial block each
    expect(files.reduce((sum, f) => sum + residentPages(f), 0)).toBeLessThan(stored / 10);
    const v = await cli(['verify', '--store', lab.storeDir]);
    expect(v.code, v.stderr).toBe(0);
  });

  it("a blob in shared memory (a receiving node's body buffer) is written with O_DIRECT when aligned, through the page cache when not", async () => {
    lab = makeLab('cv-direct-');
    const store = new ChunkStore(join(lab.root, 'chunks'), join(lab.root, 'quarantine'));
    const data = regionBytes('random', 6, 3_000_001);
    const shared = new SharedArrayBuffer(4 * 1024 * 1024 + 2 * DIRECT_ALIGN);
    const start = alignedOffset(shared);
    const aligned = new Uint8Array(shared, start, data.length);
    expect(copyBytes(aligned, 0, data)).toBe(data.length);
    expect(directAligned(aligned, 0, true)).toBe(true);
    expect(directAligned(new Uint8Array(shared, start + 16, data.length), 0, true)).toBe(false);
    await store.insert('ab'.repeat(32), aligned);
    const direct = store.pathOf('ab'.repeat(32));
    expect(residentPages(direct)).toBeLessThan(data.length / 10);
    expect(readFileSync(direct).equals(data)).toBe(true);
    const unaligned = new Uint8Array(shared, start + 16, data.length);
    unaligned.set(data);
    const buffered = new ChunkStore(join(lab.root, 'chunks2'), join(lab.root, 'quarantine'));
    await buffered.insert('ef'.repeat(32), unaligned);
    expect(readFileSync(buffered.pathOf('ef'.repeat(32))).equals(data)).toBe(true);
  });

  it('copyBytes copies into shared and plain memory alike, and refuses what does not fit', () => {
    const piece = regionBytes('text', 7, 16_384);
    for (const whole of [new SharedArrayBuffer(40_000), new ArrayBuffer(40_000)]) {
      const target = new Uint8Array(whole, 8, 39_000);
      expect(copyBytes(target, 100, piece)).toBe(piece.length);
      expect(Buffer.from(target.subarray(100, 100 + piece.length)).equals(piece)).toBe(true);
      expect(() => copyBytes(target, 39_000 - 10, piece)).toThrow(RangeError);
    }
  });

  it('readInto gives the same blob bytes through O_DIRECT (aligned room) and through the page cache', async () => {
    lab = makeLab('cv-direct-');
    const store = new ChunkStore(join(lab.root, 'chunks'), join(lab.root, 'quarantine'));
    const hex = 'ab'.repeat(32);
    const data = regionBytes('random', 5, 2_500_001);
    await store.insert(hex, data); // a plain Buffer: not aligned, written through the page cache
    const buf = new ArrayBuffer(4 * 1024 * 1024 + 2 * DIRECT_ALIGN);
    const aligned = alignedOffset(buf);
    const n1 = await store.readInto(hex, buf, aligned);
    expect(Buffer.from(buf, aligned, n1).equals(data)).toBe(true);
    const n2 = await store.readInto(hex, buf, aligned + 1); // unaligned: buffered
    expect(Buffer.from(buf, aligned + 1, n2).equals(data)).toBe(true);
    await expect(store.readInto(hex, new ArrayBuffer(1_000_000))).rejects.toMatchObject({ code: 'CHUNK_CORRUPT' });
    await expect(store.readInto('cd'.repeat(32), buf, aligned)).rejects.toMatchObject({ code: 'CHUNK_MISSING' });
  });
});
