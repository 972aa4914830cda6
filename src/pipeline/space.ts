/**
 * Space checks. Before a backup: the worst case is every allocated (non-hole) byte of the disks;
 * when that does not fit, a read-only pre-scan hashes the disks and counts the non-zero chunks the
 * store lacks, so a nearly full USB disk still takes a nightly backup that only adds a little. During
 * the backup a guard re-reads the free space every 64 MiB written and stops before the disk is full.
 */
import { ColdvaultError, formatBytes, MiB, type TaskLog } from '../core/index.js';
import { filesystemSpace, type Datastore } from '../datastore/index.js';
import { CHUNK_SIZE, chunkCountFor, chunkLength } from '../format/index.js';
import { open } from 'node:fs/promises';
import { BufferPool, isAllZero } from './buffers.js';
import type { ChunkCodec } from './worker-pool.js';

/** Free space kept back on a target, so that the catalog and logs still fit. */
export const SPACE_RESERVE = 64 * MiB;

export interface SpaceDisk {
  path: string;
  size: number;
  allocated: number;
}

export async function checkBackupSpace(store: Datastore, disks: SpaceDisk[], pool: ChunkCodec, log: TaskLog, guestId: string): Promise<void> {
  const { free } = await store.space();
  const worst = disks.reduce((sum, d) => sum + d.allocated, 0);
  if (free >= worst + SPACE_RESERVE) return;
  log.info(`space needed at most ${formatBytes(worst)}, available ${formatBytes(free)}: scanning for data not yet in the store`);
  let needed = 0;
  for (const disk of disks) needed += await newBytesOf(disk, store, pool);
  log.info(`space needed: ${formatBytes(needed)}, available: ${formatBytes(free)}`);
  if (free < needed + SPACE_RESERVE) {
    throw new ColdvaultError(
      'NO_SPACE',
      `not enough space in '${store.dir}' for the backup of guest ${guestId}: needs ${formatBytes(needed + SPACE_RESERVE)} (new data plus reserve), available ${formatBytes(free)}`,
    );
  }
}

/** Plain bytes of the non-zero chunks of a disk that the store does not hold yet. */
async function newBytesOf(disk: SpaceDisk, store: Datastore, pool: ChunkCodec): Promise<number> {
  const file = await open(disk.path, 'r');
  const buffers = new BufferPool();
  let bytes = 0;
  try {
    for (let i = 0; i < chunkCountFor(disk.size, CHUNK_SIZE); i++) {
      const length = chunkLength(disk.size, i);
      let buf = buffers.take();
      await file.read(Buffer.from(buf, 0, length), 0, length, i * CHUNK_SIZE);
      if (!isAllZero(buf, length)) {
        const { hex, buf: back } = await pool.digest(buf, length);
        buf = back;
        if (!(await store.chunks.exists(hex))) bytes += length;
      }
      buffers.give(buf);
    }
  } finally {
    await file.close();
  }
  return bytes;
}

/** A guard for `beforeWrite`: stops with NO_SPACE before the target fills up. */
export function spaceGuard(dir: string): (bytes: number) => Promise<void> {
  let sinceCheck = Infinity;
  let free = 0;
  return async (bytes) => {
    if (sinceCheck >= 64 * MiB) {
      free = (await filesystemSpace(dir)).free;
      sinceCheck = 0;
    }
    sinceCheck += bytes;
    free -= bytes;
    if (free < SPACE_RESERVE / 2) {
      throw new ColdvaultError('NO_SPACE', `the datastore '${dir}' is full: ${formatBytes(Math.max(0, free))} left`);
    }
  };
}
