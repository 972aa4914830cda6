/**
 * Prune on an S3 datastore: the retention policy of a folder store (datastore selectPrune), applied
 * with the guest lock held (a backup's keep-N rotation already holds it). A version is removed
 * manifest first (it disappears at once), then its other files; its chunks stay for gc. A version
 * being read (a fresh lock object under `locks/read-<vmid>-<version>/`, which restore and verify
 * hold), protected, or still under Object Lock retention (datastore/s3/s3-retention.ts) is kept.
 */
import type { TaskLog } from '../core/index.js';
import { retained, selectPrune, type PruneOptions, type S3Datastore } from '../datastore/index.js';
import { MANIFEST_FILE } from '../format/index.js';
import type { Catalog } from '../catalog/index.js';

export interface S3PruneRequest {
  store: S3Datastore;
  catalog: Catalog;
  guestId: string;
  options: PruneOptions;
  log: TaskLog;
  dryRun?: boolean;
  /** the caller holds the guest lock (a backup's rotation) */
  heldGuestLock?: boolean;
  lockWaitMs?: number;
}

/** Returns the removed version numbers. */
export async function pruneS3Guest(req: S3PruneRequest): Promise<number[]> {
  const purpose = `prune of guest ${req.guestId}`;
  const lock = req.heldGuestLock
    ? undefined
    : await req.store.locks.acquire({ name: `guest-${req.guestId}`, excludedBy: [], purpose, waitMs: req.lockWaitMs ?? 0 });
  try {
    return await pruneHeld(req);
  } finally {
    await lock?.release();
  }
}

async function pruneHeld(req: S3PruneRequest): Promise<number[]> {
  const { store, guestId } = req;
  const candidates = [];
  for (const version of await store.listVersionNumbers(guestId)) {
    const manifest = await store.readManifest(guestId, version);
    candidates.push({ version, time: new Date(manifest.time), protected: await store.isProtected(guestId, version) });
  }
  const marks = selectPrune(candidates, req.options);
  const removed: number[] = [];
  const now = await store.client.serverTime();
  for (const [version, mark] of [...marks].sort((a, b) => a[0] - b[0])) {
    if (mark !== 'remove') continue;
    const readers = await store.locks.fresh(`read-${guestId}-${version}`, now);
    if (readers.length > 0) {
      req.log.warn(
        `kept version ${version} of VM ${guestId}: it is being read (${await store.locks.describe(readers[0] as string)}); the next prune removes it`,
      );
      continue;
    }
    const lockedUntil = await retainedUntil(store, guestId, version, now);
    if (lockedUntil) {
      req.log.warn(`kept version ${version} of VM ${guestId}: it is under Object Lock until ${lockedUntil.toISOString()}; a prune after that removes it`);
      continue;
    }
    req.log.info(`${req.dryRun ? 'would delete' : 'delete'} old backup version ${version} of VM ${guestId}`);
    if (!req.dryRun) {
      await store.removeVersion(guestId, version);
      req.catalog.removeVersion(guestId, version);
    }
    removed.push(version);
  }
  req.log.info(`pruned ${removed.length} backup(s) not covered by keep-retention policy`);
  return removed;
}

/** The date a version's manifest is retained to, when Object Lock still holds it at `now`. */
async function retainedUntil(store: S3Datastore, guestId: string, version: number, now: Date): Promise<Date | undefined> {
  if (store.lockDays === undefined) return undefined;
  const head = await store.client.head(store.keys.file(guestId, version, MANIFEST_FILE));
  return head && retained(head.retainUntil, now) ? head.retainUntil : undefined;
}

/** Protects a version from pruning (or lifts it): a `protected` object in its folder, and the catalog; with the guest lock, as prune. */
export async function protectS3Version(req: {
  store: S3Datastore;
  catalog: Catalog;
  guestId: string;
  version: number;
  value: boolean;
  lockWaitMs?: number;
}): Promise<void> {
  const { store, guestId, version } = req;
  const purpose = `protect of guest ${guestId} version ${version}`;
  const lock = await store.locks.acquire({ name: `guest-${guestId}`, excludedBy: [], purpose, waitMs: req.lockWaitMs ?? 10_000 });
  try {
    await store.readManifest(guestId, version); // VERSION_NOT_FOUND with the right words
    await store.setProtected(guestId, version, req.value);
    req.catalog.setProtected(guestId, version, req.value);
  } finally {
    await lock.release();
  }
}
