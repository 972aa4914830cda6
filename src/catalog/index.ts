/**
 * catalog: the SQLite catalog of one datastore (`<datastore>/catalog.sqlite`, better-sqlite3).
 *
 * An index over the datastore's files, never the truth: the version folders and their manifests are.
 * Everything in it can be rebuilt from them, except the verify and boot test results (reset by a
 * rebuild). It answers the engine's and the UI's questions (which versions, how big, verified when,
 * protected?) without walking a slow USB disk.
 *
 * Vocabulary: a *version* is `guests/<guestId>/<version>/` with its manifest; a *row* is its entry here.
 *
 * Algorithm:
 *  - open: a missing (or empty) file is created and *rebuilt*: every manifest read, rows replaced.
 *    An existing file is checked (SQLite reads it, its schema is coldvault's, `PRAGMA quick_check`
 *    passes) and *reconciled*: one listing of the version folders; manifests are read only for
 *    versions with no row, and rows whose folder is gone are deleted. Verify state survives.
 *  - A *damaged* file (damage.ts) is never a dead end: open moves it aside to
 *    `catalog.sqlite.damaged-<UTC time>` (with its -journal/-wal/-shm), logs a WARN naming both, and
 *    rebuilds. On a read-only datastore nothing is written: a healthy, current file is read as it is;
 *    one that is damaged, missing or behind the folders is replaced by a catalog rebuilt in memory.
 *    A catalog that is only locked by another process, or that fails with an I/O error, is not
 *    damaged: open fails (LOCKED, IO) and leaves the file alone.
 *  - A manifest that fails to read or decode is skipped and reported (`skipped`), never fatal.
 *    Reconcile does not re-read the manifests of versions it already has: a version folder is
 *    immutable once published, and damage that happens later is verify's to find, not the catalog's.
 *  - The engine keeps the catalog current as it goes (recordVersion after publishing a version,
 *    removeVersion after pruning one); reconcile repairs whatever a crash or another tool missed.
 *  - `protected` mirrors a `protected` file in the version folder; it is read on rebuild (and for
 *    versions added by reconcile) when the reader offers `isProtected`.
 *
 * Concurrency: several processes may open one file. Journal mode DELETE (WAL needs shared memory,
 * which NTFS/exFAT/FUSE mounts lack), synchronous EXTRA, busy_timeout 5000 ms; multi-row writes are
 * single IMMEDIATE transactions, so readers never see half a version; a reconcile that changes
 * nothing takes no write lock. Two processes that find one file damaged: the second sees that the
 * path no longer names the damaged inode and opens the new file instead of moving it aside too.
 *
 * Errors: DATASTORE_TOO_NEW (schema newer than this build: kept, not moved), LOCKED (another process
 * holds the file locked beyond busy_timeout), DATASTORE_CORRUPT (only when a damaged file cannot be
 * recovered, e.g. the new file is damaged too), VERSION_NOT_FOUND (markVerified/setProtected on an
 * unknown version), NO_SPACE, IO.
 *
 * Layer: imports core, format and datastore only.
 */
export * from './types.js';
export { Catalog, CATALOG_FILE, type CatalogOpenOptions } from './catalog.js';
export { openCachedCatalog } from './cache.js';
export { SCHEMA_VERSION } from './schema.js';
export { versionJson } from './version-json.js';
