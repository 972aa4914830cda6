/** Facts about a disk image to back up: its size and allocated bytes, for files and block devices. */
import { readFile, stat } from 'node:fs/promises';
import { ColdvaultError, errnoCode, ioError } from '../core/index.js';

export interface ImageInfo {
  size: number;
  /** bytes the filesystem has allocated (the worst case of non-zero data); size for devices */
  allocated: number;
  blockDevice: boolean;
}

export async function imageInfo(path: string, what: string): Promise<ImageInfo> {
  let s;
  try {
    s = await stat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new ColdvaultError('DISK_MISSING', `${what}: image '${path}' does not exist`, { cause: err });
    throw ioError(`reading ${what} image '${path}'`, err);
  }
  if (s.isBlockDevice()) {
    const size = await blockDeviceSize(s.rdev, path);
    return { size, allocated: size, blockDevice: true };
  }
  if (!s.isFile()) throw new ColdvaultError('DISK_UNSUPPORTED', `${what}: '${path}' is neither a file nor a block device`);
  return { size: s.size, allocated: Math.min(s.size, s.blocks * 512), blockDevice: false };
}

async function blockDeviceSize(rdev: number, path: string): Promise<number> {
  const major = (rdev >>> 8) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
  try {
    const sectors = Number((await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8')).trim());
    return sectors * 512;
  } catch (err) {
    throw ioError(`reading the size of block device '${path}'`, err);
  }
}
