/**
 * Garbage collection: mark and sweep, safe while backups run.
 * - Mark: the digests of every index of every published version.
 * - Cutoff: the earlier of GC's own start and the start of the oldest running writer (backup),
 *   less a few seconds for timestamp granularity (FAT-family disks keep 2 s).
 * - Sweep: an unreferenced chunk is a candidate only if its mtime is older than the cutoff. Running
 *   backups touch (set the mtime of) every chunk they dedup against, and write new ones fresh, so
 *   their chunks are never older than their start. To close the race between GC's look at a chunk
 *   and a backup's touch, GC first renames the candidate away, then looks at its mtime: if a backup
 *   touched it meanwhile, it is renamed back; a backup that touches after the rename sees ENOENT and
 *   writes the chunk anew.
 * Leftover temp files of dead writers are removed too.
 */
import { rename, stat, unlink } from 'node:fs/promises';
import { errnoCode, ioError } from '../core/errors.js';
import type { TaskLog } from '../core/log.js';
import { processAlive } from './pid.js';
import { TEMP_MARK, tempNameFor } from './durable.js';
import type { Datastore } from './store.js';

export interface GcResult {
  referencedChunks: number;
  removedChunks: number;
  removedBytes: number;
  keptUnreferenced: number;
  removedTempFiles: number;
}

const TIMESTAMP_SLACK_MS = 3_000;

export async function collectGarbage(store: Datastore, log: TaskLog): Promise<GcResult> {
  const lock = await store.locks.acquire('gc', 'garbage collection');
  try {
    await store.checkpoint('gc:locked');
    const gcStart = store.clock.now();
    const referenced = await markReferenced(store);
    await store.checkpoint('gc:marked');
    const writers = await store.locks.liveWriters();
    const cutoff = Math.min(gcStart, ...writers.map((w) => w.start)) - TIMESTAMP_SLACK_MS;
    log.info(`marked ${referenced.size} referenced chunks; ${writers.length} backup(s) running; sweeping chunks unused since ${new Date(cutoff).toISOString()}`);
    const result = await sweep(store, referenced, cutoff);
    return { referencedChunks: referenced.size, ...result };
  } finally {
    await lock.release();
  }
}

async function markReferenced(store: Datastore): Promise<Set<string>> {
  const referenced = new Set<string>();
  for (const guestId of await store.listGuestIds()) {
    for (const version of await store.listVersionNumbers(guestId)) {
      await store.checkpoint('gc:mark');
      const manifest = await store.readManifest(guestId, version);
      for (const disk of manifest.disks) {
        const index = await store.readIndex(guestId, version, disk.index);
        for (const d of index.digests) if (d) referenced.add(d.toString('hex'));
      }
    }
  }
  return referenced;
}

async function sweep(store: Datastore, referenced: Set<string>, cutoff: number): Promise<Omit<GcResult, 'referencedChunks'>> {
  const r = { removedChunks: 0, removedBytes: 0, keptUnreferenced: 0, removedTempFiles: 0 };
  for await (const entry of store.chunks.list()) {
    if (entry.temp) {
      if (await staleTemp(entry.name, entry.path)) {
        await unlink(entry.path).catch(() => undefined);
        r.removedTempFiles++;
      }
      continue;
    }
    if (referenced.has(entry.name)) continue;
    await store.checkpoint('gc:candidate');
    const removed = await removeIfOlder(store, entry.path, cutoff);
    if (removed === undefined) r.keptUnreferenced++;
    else {
      r.removedChunks++;
      r.removedBytes += removed;
    }
  }
  return r;
}

/** Renames the chunk away, then decides by its mtime; returns the bytes freed or undefined if kept. */
async function removeIfOlder(store: Datastore, path: string, cutoff: number): Promise<number | undefined> {
  const before = await stat(path).catch(() => undefined);
  if (!before || before.mtimeMs >= cutoff) return undefined;
  const aside = tempNameFor(path);
  try {
    await rename(path, aside);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw ioError(`moving unused chunk '${path}' aside`, err);
  }
  await store.checkpoint('gc:aside');
  const after = await stat(aside);
  if (after.mtimeMs >= cutoff) {
    await rename(aside, path);
    return undefined;
  }
  await unlink(aside);
  return after.size;
}

/** A temp file is stale when its writer (pid in its name) is gone, or it is older than a day. */
async function staleTemp(name: string, path: string): Promise<boolean> {
  const pid = Number(name.slice(name.indexOf(TEMP_MARK) + TEMP_MARK.length).split('-')[0]);
  if (pid && pid !== process.pid && !processAlive(pid)) return true;
  const s = await stat(path).catch(() => undefined);
  return s !== undefined && Date.now() - s.mtimeMs > 86_400_000;
}
