/** Opening a store for one request (the catalog is reconciled on open and closed after). */
import { Catalog } from '../catalog/index.js';
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
