/**
 * The last look before a backup publishes its version: is every chunk it reused still in the store?
 * A backup touches each chunk it finds in the store, which keeps garbage collection away from it,
 * except in one window inside a single touch (the name is resolved, gc renames the file aside, looks
 * at its old time and deletes it, then the touch lands on the deleted file: see datastore/gc.ts).
 * Such a chunk is read again from the disk image, which must not have changed, and written anew. A
 * chunk verify moved to quarantine meanwhile is written anew the same way, which heals older versions.
 */
import type { TaskLog } from '../core/index.js';
import { rewriteChunk, type BackupDiskContext } from './backup-disk.js';

export interface WrittenDisk {
  path: string;
  size: number;
  digests: Array<Buffer | null>;
}

/** Writes again every reused chunk that is gone; returns how many. */
export async function confirmReused(disks: WrittenDisk[], ctx: BackupDiskContext, log: TaskLog): Promise<number> {
  const missing = new Set(await ctx.chunks.missing(ctx.reused));
  if (missing.size === 0) return 0;
  const count = missing.size;
  log.warn(`${count} chunk(s) this backup reused were removed from the store meanwhile (garbage collection or verify ran); writing them again`);
  for (const disk of disks) {
    for (const [i, digest] of disk.digests.entries()) {
      const hex = digest?.toString('hex');
      if (hex && missing.delete(hex)) await rewriteChunk(disk.path, disk.size, i, hex, ctx);
    }
  }
  await ctx.chunks.syncDirs();
  return count;
}
