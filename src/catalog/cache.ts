/**
 * The catalog of a datastore with no folder of its own to keep it in (an S3 bucket): a local cache in
 * `<stateDir>/catalogs/<datastore id>.sqlite` (the folder private to its owner), rebuilt from the
 * store's manifests when it is missing. One file per datastore id, so two names for one bucket share it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskLog } from '../core/index.js';
import { Catalog } from './catalog.js';
import type { CatalogReader } from './types.js';

export function openCachedCatalog(reader: CatalogReader, datastoreId: string, stateDir: string, log?: TaskLog): Promise<Catalog> {
  const dir = join(stateDir, 'catalogs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return Catalog.open(reader, { log, file: join(dir, `${datastoreId}.sqlite`) });
}
