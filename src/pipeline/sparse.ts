/**
 * Hole detection: which chunks of an image file hold any allocated data. Node has no lseek, so a
 * small native addon (native/sparse.c, built by `npm install` through node-gyp) asks the kernel with
 * SEEK_DATA / SEEK_HOLE; chunks in holes are all zero and are not read at all, which is what lets a
 * 32 GiB image holding 100 MiB back up in the time of its 100 MiB. Without the addon (not built), or
 * on a filesystem without SEEK_DATA, every chunk is read and zero chunks are found by comparison:
 * slower, never wrong. A block device is read whole too: lseek(SEEK_DATA) on it fails with EINVAL.
 */
import { fstatSync } from 'node:fs';
import { loadNative } from '../core/index.js';

export function holeDetectionAvailable(): boolean {
  return loadNative() !== null;
}

/** Ranges [first, end) of chunk indexes that may hold data; the rest are holes. */
export function dataChunkRanges(fd: number, size: number, chunkSize: number, count: number): Array<[number, number]> {
  const addon = loadNative();
  if (!addon || count === 0 || !fstatSync(fd).isFile()) return count === 0 ? [] : [[0, count]];
  const flat = addon.dataChunks(fd, size, chunkSize);
  const ranges: Array<[number, number]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) ranges.push([flat[i] as number, Math.min(count, flat[i + 1] as number)]);
  return ranges;
}
