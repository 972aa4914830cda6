/**
 * Opening a store for one request: a folder (its catalog reconciled on open) or a configured S3
 * datastore (opened by name with the config's credentials, its catalog the local cache in the state
 * dir); both closed after.
 */
import { Catalog, openCachedCatalog } from '../catalog/index.js';
import { describeError, type TaskLog } from '../core/index.js';
import { Datastore, S3Datastore } from '../datastore/index.js';
import type { ServerConfig } from './deps.js';
import { ApiError } from './errors.js';
import type { KnownStore } from './paths.js';

export type OpenedStore = { kind: 'folder'; store: Datastore; catalog: Catalog } | { kind: 's3'; store: S3Datastore; catalog: Catalog };

export async function withCatalog<T>(dir: string, fn: (store: Datastore, catalog: Catalog) => Promise<T> | T, log?: TaskLog): Promise<T> {
  const store = await Datastore.open(dir);
  const catalog = await Catalog.open(store, { log }); // a damaged catalog is moved aside and rebuilt, with a WARN on `log` (default stderr)
  try {
    return await fn(store, catalog);
  } finally {
    catalog.close();
  }
}

/** Runs `fn` on the store and its catalog, folder or S3. */
export async function withStore<T>(ref: KnownStore, config: ServerConfig, fn: (opened: OpenedStore) => Promise<T> | T, log?: TaskLog): Promise<T> {
  if (ref.kind !== 's3') return withCatalog(ref.dir, (store, catalog) => fn({ kind: 'folder', store, catalog }), log);
  const store = await openS3(ref, config);
  try {
    const catalog = await openCachedCatalog(store, store.identity.id, config.stateDir, log);
    try {
      return await fn({ kind: 's3', store, catalog });
    } finally {
      catalog.close();
    }
  } finally {
    store.close();
  }
}

/** A configured S3 datastore, opened (its identity read: a bucket that is not a datastore fails here). */
export function openS3(ref: KnownStore, config: ServerConfig): Promise<S3Datastore> {
  const settings = config.s3Stores?.(ref.name);
  if (!settings) throw new ApiError('INTERNAL', `datastore '${ref.name}' is listed as an S3 datastore but has no settings`);
  return S3Datastore.open(settings);
}

/** A store's space and totals; a store that cannot be opened is reported with `error`. An S3 store has no free space to ask about. */
export async function storeStatus(s: KnownStore, config: ServerConfig): Promise<Record<string, unknown>> {
  try {
    return await withStore(s, config, async (opened) => {
      const totals = opened.catalog.storeTotals();
      const counts = { versions: totals.versions, logicalBytes: totals.logicalBytes, storedBytes: totals.storedBytes };
      if (opened.kind === 's3')
        return { ...s, endpoint: opened.store.settings.endpoint, objectLockDays: opened.store.lockDays, used: totals.storedBytes, ...counts };
      const { free, total } = await opened.store.space();
      return { ...s, used: total - free, free, total, ...counts };
    });
  } catch (err) {
    return { ...s, error: describeError(err) };
  }
}
