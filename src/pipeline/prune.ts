/**
 * Prunes a guest's versions by a retention policy and keeps the catalog in step; protects versions.
 * Both hold the guest's retention lock (datastore/version-use.ts), so a version protected while prune
 * decides is kept, and a version a restore or export is reading is kept too (read lease).
 */
import { isColdvaultError, type TaskLog } from '../core/index.js';
import { lockRetention, removeVersionUnlessRead, selectPrune, describeHolder, type Datastore, type PruneOptions } from '../datastore/index.js';
import type { Catalog } from '../catalog/index.js';

export interface PruneRequest {
  store: Datastore;
  catalog: Catalog;
  guestId: string;
  options: PruneOptions;
  log: TaskLog;
  dryRun?: boolean;
}

/** Returns the removed version numbers. */
export async function pruneGuest(req: PruneRequest): Promise<number[]> {
  const lock = await lockRetention(req.store, req.guestId, `prune of guest ${req.guestId}`);
  try {
    return await pruneLocked(req);
  } finally {
    await lock.release();
  }
}

async function pruneLocked(req: PruneRequest): Promise<number[]> {
  const marks = selectPrune(await listCandidates(req.store, req.guestId), req.options);
  await req.store.checkpoint('prune:listed');
  const removed: number[] = [];
  req.log.info(`prune older backups with retention: ${describeOptions(req.options)}`);
  for (const [version, mark] of [...marks].sort((a, b) => a[0] - b[0])) {
    if (mark !== 'remove') continue;
    req.log.info(`${req.dryRun ? 'would delete' : 'delete'} old backup version ${version} of VM ${req.guestId}`);
    if (!req.dryRun && !(await removeOne(req, version))) continue;
    removed.push(version);
  }
  req.log.info(`pruned ${removed.length} backup(s) not covered by keep-retention policy`);
  return removed;
}

async function listCandidates(store: Datastore, guestId: string): Promise<Array<{ version: number; time: Date; protected: boolean }>> {
  const candidates = [];
  for (const version of await store.listVersionNumbers(guestId)) {
    const manifest = await store.readManifest(guestId, version);
    candidates.push({ version, time: new Date(manifest.time), protected: await store.isProtected(guestId, version) });
  }
  return candidates;
}

/** Removes one version unless it is being read; false when it was kept. */
async function removeOne(req: PruneRequest, version: number): Promise<boolean> {
  await req.store.checkpoint('prune:remove');
  const result = await removeVersionUnlessRead(req.store, req.guestId, version, `prune of guest ${req.guestId}`);
  if (!result.removed) {
    req.log.warn(
      `kept version ${version} of VM ${req.guestId}: it is being read by ${result.readers.map(describeHolder).join(', ')}; the next prune removes it`,
    );
    return false;
  }
  req.catalog.removeVersion(req.guestId, version);
  return true;
}

/** The keep-N rotation after a backup: a rotation that cannot run now (LOCKED) is a warning, not a failed backup. */
export async function rotateGuest(req: PruneRequest): Promise<number[]> {
  try {
    return await pruneGuest(req);
  } catch (err) {
    if (!isColdvaultError(err, 'LOCKED')) throw err;
    req.log.warn(`old backups of VM ${req.guestId} were not rotated: ${err.message}`);
    return [];
  }
}

/** Protects a version from pruning (or lifts the protection), in the store and the catalog. */
export async function protectVersion(req: { store: Datastore; catalog: Catalog; guestId: string; version: number; value: boolean }): Promise<void> {
  const lock = await lockRetention(req.store, req.guestId, `protect of guest ${req.guestId} version ${req.version}`);
  try {
    await req.store.readManifest(req.guestId, req.version); // VERSION_NOT_FOUND with the right words
    await req.store.checkpoint('protect:checked');
    await req.store.setProtected(req.guestId, req.version, req.value);
    req.catalog.setProtected(req.guestId, req.version, req.value);
  } finally {
    await lock.release();
  }
}

function describeOptions(o: PruneOptions): string {
  const parts = Object.entries(o)
    .filter(([, v]) => (v ?? 0) > 0)
    .map(([k, v]) => `${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}=${v}`);
  return parts.length > 0 ? parts.join(', ') : 'keep-all';
}
