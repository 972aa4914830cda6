/**
 * Garbage collection: mark and sweep, safe while backups, prune, restore and verify run.
 *
 * Steps:
 *  1. Take the gc lock (one gc per store). Note gc's start S on the store's clock.
 *  2. Read the registrations of the live writers (running backups), then the cutoff
 *     C = min(S, start of every live writer) - slack (timestamp granularity: FAT keeps 2 s).
 *  3. Mark: the digests of every index of every version that exists now (a version that vanishes
 *     while being read, because prune removed it, is skipped: nothing of it needs to be kept).
 *  4. Sweep: a chunk that is not marked and whose time (mtime) is older than C is removed. To decide
 *     without racing a backup's touch, gc renames the candidate aside (`<hex>.cvgc-*`), looks at its
 *     time again and deletes it only if it is still old (else renames it back). A gc that dies between
 *     the rename and its last look (kill -9, power cut) leaves the copy aside; a backup may have
 *     touched the chunk and published a version using it just before the rename. So a copy aside is
 *     never deleted as a leftover: a read that misses the chunk puts it back (chunks.ts), and gc puts
 *     every leftover back as its sweep meets it (it holds the gc lock: their gc is dead); the next gc
 *     judges them like any chunk.
 *
 * Why no interleaving of backup, prune and gc loses a chunk that a version references. Every
 * backup registers as a writer (locks.ts: its start W is taken before the registration file appears)
 * before it looks at a single chunk, and it sets the time of every chunk it references to "now" on
 * the same clock: a chunk it writes gets its time before it gets its name (durable.ts), a chunk it
 * reuses is touched (chunks.ts). So every chunk of a backup has a time >= the moment its registration
 * was complete >= W. Take any version V and any gc run G:
 *  - V was published before G listed V's guest (step 3): G marks V's chunks.
 *  - Otherwise V's backup B was still running when G listed. If B's registration was visible at
 *    step 2, C <= W(B) - slack. If not, it became visible after step 2 began, after S was taken, so
 *    V's chunks have times > S >= C. Either way G removes none of them, wherever G is paused (for a
 *    second or an hour: the cutoff is fixed before marking and never moves forward).
 *  - B touches a chunk while G sweeps it: a touch before G's rename makes G's second look see the
 *    new time (renamed back); a touch after the rename fails (ENOENT) and B writes the chunk anew.
 *    One window is left inside a single touch: utimes resolves the name, G renames and looks, then
 *    utimes sets the time on the inode G is about to delete. B closes it: before it publishes, it
 *    checks that every chunk it reused is still there and writes the missing ones again from its
 *    source (pipeline/backup-reuse.ts).
 *  - Prune only removes versions: a chunk it unreferences may be reused by a backup that then touches
 *    it, which the rules above cover. A version being read (restore, export) holds a read lease that
 *    prune respects (versions.ts), so a reader's chunks stay marked by step 3.
 * Leftover temp files of dead writers are removed too.
 */
import { rename, stat, unlink } from 'node:fs/promises';
import { errnoCode, ioError, isColdvaultError, type TaskLog } from '../core/index.js';
import { processAlive } from './pid.js';
import { TEMP_MARK } from './durable.js';
import type { Datastore } from './store.js';
import type { FixedIndex, Manifest } from '../format/index.js';

export interface GcResult {
  referencedChunks: number;
  removedChunks: number;
  removedBytes: number;
  keptUnreferenced: number;
  removedTempFiles: number;
  /** copies an interrupted gc had left aside, put back in place */
  putBack: number;
}

const TIMESTAMP_SLACK_MS = 3_000;

export async function collectGarbage(store: Datastore, log: TaskLog): Promise<GcResult> {
  const lock = await store.locks.acquire('gc', 'garbage collection');
  try {
    await store.checkpoint('gc:locked');
    const gcStart = store.clock.now();
    const writers = await store.locks.liveWriters();
    const cutoff = Math.min(gcStart, ...writers.map((w) => w.start)) - TIMESTAMP_SLACK_MS;
    await store.checkpoint('gc:writers');
    const referenced = await markReferenced(store);
    await store.checkpoint('gc:marked');
    log.info(
      `marked ${referenced.size} referenced chunks; ${writers.length} backup(s) running; sweeping chunks unused since ${new Date(cutoff).toISOString()}`,
    );
    const result = await sweep(store, referenced, cutoff);
    if (result.putBack > 0) log.info(`put back ${result.putBack} chunk(s) an interrupted garbage collection had moved aside`);
    return { referencedChunks: referenced.size, ...result };
  } finally {
    await lock.release();
  }
}

/** What marking reads of a store: a folder's (Datastore) or a bucket's (S3Datastore). */
export interface MarkSource {
  listGuestIds(): Promise<string[]>;
  listVersionNumbers(guestId: string): Promise<number[]>;
  readManifest(guestId: string, version: number): Promise<Manifest>;
  readIndex(guestId: string, version: number, name: string): Promise<FixedIndex>;
  checkpoint?(step: string): Promise<void>;
}

/** Every chunk a published version's indexes name (the mark of gc). */
export async function markReferenced(store: MarkSource): Promise<Set<string>> {
  const referenced = new Set<string>();
  for (const guestId of await store.listGuestIds()) {
    for (const version of await store.listVersionNumbers(guestId)) {
      await store.checkpoint?.('gc:mark');
      await markVersion(store, guestId, version, referenced);
    }
  }
  return referenced;
}

/** Adds a version's chunks; a version pruned meanwhile is skipped, any other failure stops gc (it sweeps nothing). */
async function markVersion(store: MarkSource, guestId: string, version: number, referenced: Set<string>): Promise<void> {
  try {
    const manifest = await store.readManifest(guestId, version);
    for (const disk of manifest.disks) {
      const index = await store.readIndex(guestId, version, disk.index);
      for (const d of index.digests) if (d) referenced.add(d.toString('hex'));
    }
  } catch (err) {
    if (!isColdvaultError(err, 'VERSION_NOT_FOUND')) throw err;
  }
}

async function sweep(store: Datastore, referenced: Set<string>, cutoff: number): Promise<Omit<GcResult, 'referencedChunks'>> {
  const r = { removedChunks: 0, removedBytes: 0, keptUnreferenced: 0, removedTempFiles: 0, putBack: 0 };
  for await (const entry of store.chunks.list()) {
    if (entry.kind === 'aside') {
      if (await store.chunks.putBack(entry.hex)) r.putBack++; // left by a gc that died; judged by the next gc
      continue;
    }
    if (entry.kind === 'temp') {
      if (await staleTemp(entry.name, entry.path)) {
        await unlink(entry.path).catch(() => undefined);
        r.removedTempFiles++;
      }
      continue;
    }
    if (referenced.has(entry.name)) continue;
    await store.checkpoint('gc:candidate');
    const removed = await removeIfOlder(store, entry.name, entry.path, cutoff);
    if (removed === undefined) r.keptUnreferenced++;
    else {
      r.removedChunks++;
      r.removedBytes += removed;
    }
  }
  return r;
}

/** Renames the chunk away, then decides by its mtime; returns the bytes freed or undefined if kept. */
async function removeIfOlder(store: Datastore, hex: string, path: string, cutoff: number): Promise<number | undefined> {
  const before = await stat(path).catch(() => undefined);
  if (!before || before.mtimeMs >= cutoff) return undefined;
  await store.checkpoint('gc:decided');
  const aside = store.chunks.asidePath(hex);
  if (!(await tolerateGone(() => rename(path, aside), `moving unused chunk '${path}' aside`))) return undefined;
  await store.checkpoint('gc:aside');
  const after = await stat(aside).catch(() => undefined); // gone: a reader put it back (chunks.ts recoverAside)
  if (!after) return undefined;
  if (after.mtimeMs >= cutoff) {
    await tolerateGone(() => rename(aside, path), `putting chunk '${path}' back`);
    return undefined;
  }
  return (await tolerateGone(() => unlink(aside), `removing unused chunk '${aside}'`)) ? after.size : undefined;
}

/** Runs a rename or unlink; false when its source was gone (ENOENT), any other error thrown. */
async function tolerateGone(op: () => Promise<void>, doing: string): Promise<boolean> {
  try {
    await op();
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw ioError(doing, err);
  }
}

/** A temp file is stale when its writer (pid in its name) is gone, or it is older than a day. */
async function staleTemp(name: string, path: string): Promise<boolean> {
  const pid = Number(name.slice(name.indexOf(TEMP_MARK) + TEMP_MARK.length).split('-')[0]);
  if (pid && pid !== process.pid && !processAlive(pid)) return true;
  const s = await stat(path).catch(() => undefined);
  return s !== undefined && Date.now() - s.mtimeMs > 86_400_000;
}
