/** Prunes a guest's versions by a retention policy and keeps the catalog in step. */
import type { TaskLog } from '../core/log.js';
import { selectPrune, type Datastore, type PruneOptions } from '../datastore/index.js';
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
  const versions = await req.store.listVersionNumbers(req.guestId);
  const candidates = [];
  for (const version of versions) {
    const manifest = await req.store.readManifest(req.guestId, version);
    candidates.push({ version, time: new Date(manifest.time), protected: await req.store.isProtected(req.guestId, version) });
  }
  await req.store.checkpoint('prune:listed');
  const marks = selectPrune(candidates, req.options);
  const removed: number[] = [];
  req.log.info(`prune older backups with retention: ${describeOptions(req.options)}`);
  for (const [version, mark] of [...marks].sort((a, b) => a[0] - b[0])) {
    if (mark !== 'remove') continue;
    req.log.info(`${req.dryRun ? 'would delete' : 'delete'} old backup version ${version} of VM ${req.guestId}`);
    if (!req.dryRun) {
      await req.store.checkpoint('prune:remove');
      await req.store.removeVersion(req.guestId, version);
      req.catalog.removeVersion(req.guestId, version);
    }
    removed.push(version);
  }
  req.log.info(`pruned ${removed.length} backup(s) not covered by keep-retention policy`);
  return removed;
}

/** Protects a version from pruning (or lifts the protection), in the store and the catalog. */
export async function protectVersion(req: { store: Datastore; catalog: Catalog; guestId: string; version: number; value: boolean }): Promise<void> {
  await req.store.readManifest(req.guestId, req.version); // VERSION_NOT_FOUND with the right words
  await req.store.checkpoint('protect:checked');
  await req.store.setProtected(req.guestId, req.version, req.value);
  req.catalog.setProtected(req.guestId, req.version, req.value);
}

function describeOptions(o: PruneOptions): string {
  const parts = Object.entries(o).filter(([, v]) => (v ?? 0) > 0).map(([k, v]) => `${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}=${v}`);
  return parts.length > 0 ? parts.join(', ') : 'keep-all';
}
