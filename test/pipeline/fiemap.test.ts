/**
 * FIEMAP in the native addon (native/extents.c): the extent map of real files on a real XFS with
 * reflink (loop device), as the changed-extent nightly backup reads it. A clone shares every extent
 * with its source at the same physical address; a write moves the written blocks of one file only; a
 * map longer than one ioctl's worth of extents comes back whole; FIEMAP_FLAG_SYNC leaves no delayed
 * allocation; a filesystem without FIEMAP throws EOPNOTSUPP.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIEMAP_EXTENT, loadNative, type FileExtent } from '../../src/core/index.js';
import { unchangedChunks } from '../../src/pipeline/changed-extents.js';
import { ReflinkFs } from './reflink-lab.js';

const MiB = 1024 * 1024;
let fs: ReflinkFs;
beforeAll(() => {
  fs = ReflinkFs.create(512, 'cv-fiemap-');
});
afterAll(() => fs?.destroy());

function extentsOf(path: string, sync = true): FileExtent[] {
  const addon = loadNative();
  if (!addon?.extents) throw new Error('the native addon with extents() is not built (npm run build:native)');
  const fd = openSync(path, 'r');
  try {
    return addon.extents(fd, sync);
  } finally {
    closeSync(fd);
  }
}

function writeAt(path: string, data: Buffer, offset: number, size?: number): void {
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    writeSync(fd, data, 0, data.length, offset);
    if (size !== undefined) ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

/** The map `filefrag -v` reads (its own FIEMAP calls): [logical, physical, length, unwritten|last] in bytes. */
function filefrag(path: string): number[][] {
  const out = execFileSync('filefrag', ['-v', '-s', path], { encoding: 'utf8' });
  const bs = Number(/\((\d+) blocks of (\d+) bytes\)/.exec(out)?.[2]);
  return [...out.matchAll(/^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+(\d+)\.\.\s*\d+:\s+(\d+):\s+(?:\d+:)?\s*(\S*)\s*$/gm)].map((m) => {
    const flags = (m[5] ?? '').split(',');
    const bits = (flags.includes('unwritten') ? FIEMAP_EXTENT.UNWRITTEN : 0) | (flags.includes('last') ? FIEMAP_EXTENT.LAST : 0);
    return [Number(m[1]) * bs, Number(m[3]) * bs, Number(m[4]) * bs, bits];
  });
}

const random = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729 + (i >> 9)) & 0xff));

describe('extents (FIEMAP)', () => {
  it('maps two clones of a file onto the same blocks until the file is written, then the written blocks differ', () => {
    const source = join(fs.mnt, 'disk.raw');
    writeAt(source, random(12 * MiB, 1), 0, 16 * MiB);
    const [base, next] = [join(fs.mnt, 'base'), join(fs.mnt, 'next')];
    ReflinkFs.clone(source, base);
    ReflinkFs.clone(source, next);
    const [a, b] = [extentsOf(base), extentsOf(next)];
    expect(a.length).toBeGreaterThan(0);
    expect(b).toEqual(a);
    for (const e of a) expect(e.flags & FIEMAP_EXTENT.SHARED).toBe(FIEMAP_EXTENT.SHARED);
    expect((a.at(-1) as FileExtent).flags & FIEMAP_EXTENT.LAST).toBe(FIEMAP_EXTENT.LAST);
    expect([...unchangedChunks(a, b, 16 * MiB, 4 * MiB)]).toEqual([0, 1, 2]); // chunk 3 is a hole in both

    writeAt(source, random(4096, 2), 5 * MiB + 8192); // in chunk 1
    const later = join(fs.mnt, 'later');
    ReflinkFs.clone(source, later);
    expect(extentsOf(base)).toEqual(a); // a write to the source leaves the clones' maps as they were
    expect([...unchangedChunks(a, extentsOf(later), 16 * MiB, 4 * MiB)]).toEqual([0, 2]);
  });

  it('pages through a map longer than one call returns: the same map as filefrag reads', () => {
    const path = join(fs.mnt, 'fragmented');
    const block = random(4096, 3);
    for (let i = 0; i < 1500; i++) writeAt(path, block, i * 8192); // blocks with holes (or preallocation) between them
    const map = extentsOf(path);
    expect(map.length).toBeGreaterThan(1500); // three calls' worth at least
    expect(map.map((e) => [e.logical, e.physical, e.length, e.flags & (FIEMAP_EXTENT.UNWRITTEN | FIEMAP_EXTENT.LAST)])).toEqual(filefrag(path));
    expect(map.filter((e) => e.flags & FIEMAP_EXTENT.LAST).length).toBe(1);
  });

  it('with sync, writes delayed data first: no DELALLOC extent is left', () => {
    const path = join(fs.mnt, 'fresh');
    writeAt(path, random(MiB, 4), 0);
    expect(extentsOf(path, false).some((e) => e.flags & FIEMAP_EXTENT.DELALLOC)).toBe(true);
    const synced = extentsOf(path, true);
    expect(synced.some((e) => e.flags & FIEMAP_EXTENT.DELALLOC)).toBe(false);
    expect(synced.reduce((s, e) => s + e.length, 0)).toBe(MiB);
  });

  it('throws EOPNOTSUPP with its errno on a filesystem without FIEMAP (tmpfs)', () => {
    const dir = mkdtempSync('/dev/shm/cv-fiemap-');
    try {
      const path = join(dir, 'f');
      writeAt(path, random(4096, 5), 0);
      expect(() => extentsOf(path)).toThrow(expect.objectContaining({ code: 'EOPNOTSUPP', errno: 95, syscall: 'ioctl(FS_IOC_FIEMAP)' }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
