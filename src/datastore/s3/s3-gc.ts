/**
 * Garbage collection of an S3 datastore: mark every chunk a published version's indexes name, then
 * delete the chunk objects nobody names. It runs only while no backup is registered as a writer
 * (the `gc` lock excludes `writers`, index.ts point 2), so nothing it deletes can be reused by a
 * running backup. Before it marks, it writes a new gc generation (`gc-generation`): a backup
 * compares the generation it saw when it registered with the one at its publish, so one that was
 * held up past its lock's life while a gc ran refuses to publish (index.ts point 4). Deletes go in
 * batches, each inside the gc lock's `actWithin` (re-confirmed, bounded in time).
 */
import { randomUUID } from 'node:crypto';
import type { TaskLog } from '../../core/index.js';
import { markReferenced } from '../gc.js';
import { S3Error } from '../../targets/index.js';
import { removeAllVersions, type S3Datastore } from './s3-datastore.js';

export interface S3GcResult {
  referencedChunks: number;
  removedChunks: number;
  removedBytes: number;
  /** unused chunks Object Lock still keeps */
  keptLocked: number;
  generation: string;
}

const DELETE_BATCH = 200;

export async function collectS3Garbage(store: S3Datastore, log: TaskLog, lockWaitMs = 0): Promise<S3GcResult> {
  const lock = await store.locks.acquire({ name: 'gc', excludedBy: ['writers'], purpose: 'garbage collection', waitMs: lockWaitMs });
  try {
    const generation = randomUUID();
    await lock.actWithin((signal) => store.client.put(store.keys.gcGeneration(), Buffer.from(generation), { signBody: true, signal }));
    const referenced = await markReferenced(store);
    log.info(`marked ${referenced.size} referenced chunks (gc generation ${generation})`);
    const unused: Array<{ key: string; size: number }> = [];
    for await (const o of store.client.list(store.keys.chunks())) {
      const hex = o.key.slice(o.key.lastIndexOf('/') + 1);
      if (!referenced.has(hex)) unused.push({ key: o.key, size: o.size });
    }
    let removedBytes = 0;
    let removed = 0;
    let keptLocked = 0;
    for (let i = 0; i < unused.length; i += DELETE_BATCH) {
      const batch = unused.slice(i, i + DELETE_BATCH);
      // each delete inside the lock's bound: a gc held up past it gives up instead of deleting late
      await lock.actWithin(async (signal) => {
        for (const o of batch) {
          if (await removeChunk(store, o.key, signal)) {
            removed++;
            removedBytes += o.size;
          } else keptLocked++;
        }
      });
    }
    log.info(
      `removed ${removed} unused chunk object(s)${keptLocked ? `; kept ${keptLocked} still under Object Lock retention (a gc after it ends removes them)` : ''}`,
    );
    return { referencedChunks: referenced.size, removedChunks: removed, removedBytes, keptLocked, generation };
  } finally {
    await lock.release();
  }
}

/** Deletes an unused chunk object (every version of it under Object Lock); false when retention still holds it. */
async function removeChunk(store: S3Datastore, key: string, signal: AbortSignal): Promise<boolean> {
  if (store.lockDays === undefined) {
    await store.client.delete(key, undefined, signal);
    return true;
  }
  try {
    await removeAllVersions(store.client, key, undefined, signal);
    return true;
  } catch (err) {
    if (err instanceof S3Error && err.code === 'S3_FORBIDDEN') return false;
    throw err;
  }
}

/** The generation of the last gc that started ('' when none ever ran). */
export async function gcGeneration(store: S3Datastore): Promise<string> {
  try {
    return (await store.client.get(store.keys.gcGeneration())).toString('utf8');
  } catch (err) {
    if (err instanceof S3Error && err.code === 'S3_NOT_FOUND') return '';
    throw err;
  }
}
