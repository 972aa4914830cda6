/** Opening a store for one request (the catalog is reconciled on open and closed after), and its JSON views. */
import { Catalog, type CatalogVersion } from '../catalog/index.js';
import { describeError, type TaskLog } from '../core/index.js';
import { Datastore } from '../datastore/index.js';
import type { KnownStore } from './paths.js';

export async function withCatalog<T>(dir: string, fn: (store: Datastore, catalog: Catalog) => Promise<T> | T, log?: TaskLog): Promise<T> {
  const store = await Datastore.open(dir);
  const catalog = await Catalog.open(store, { log }); // a damaged catalog is moved aside and rebuilt, with a WARN on `log` (default stderr)
  try {
    return await fn(store, catalog);
  } finally {
    catalog.close();
  }
}

/** A store's space and totals; a store that cannot be opened is reported with `error`. */
export async function storeStatus(s: KnownStore): Promise<Record<string, unknown>> {
  try {
    return await withCatalog(s.dir, async (store, catalog) => {
      const { free, total } = await store.space();
      const totals = catalog.storeTotals();
      return { ...s, used: total - free, free, total, versions: totals.versions, logicalBytes: totals.logicalBytes, storedBytes: totals.storedBytes };
    });
  } catch (err) {
    return { ...s, error: describeError(err) };
  }
}

/** A version as `coldvault list --json` prints it, plus the store's folder. */
export function versionJson(v: CatalogVersion, store: string): Record<string, unknown> {
  return {
    id: v.guestId,
    version: v.version,
    time: v.time,
    name: v.name,
    node: v.node,
    disks: v.disks.map((d) => ({ key: d.key, volume: d.volume, format: d.format, size: d.size, sha256: d.sha256, zeroBytes: d.zeroBytes })),
    verified: v.verifyState === 'ok',
    verifyState: v.verifyState,
    verifiedAt: v.verifiedAt,
    protected: v.protected,
    logicalBytes: v.logicalBytes,
    zeroBytes: v.zeroBytes,
    newBytes: v.newBytes,
    storedBytes: v.storedBytes,
    store,
  };
}
