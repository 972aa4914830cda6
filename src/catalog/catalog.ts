/** The Catalog: the engine's handle on one datastore's catalog file. See index.ts for the contract. */
import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import type Database from 'better-sqlite3';
import { ColdvaultError, describeError, errnoCode, formatLogLine, ioError, isColdvaultError, type LogLevel, type TaskLog } from '../core/index.js';
import type { Manifest } from '../format/index.js';
import { CatalogDamage, catalogError, inodeOf, isSqliteError, moveAside } from './damage.js';
import { versionKey } from './rows.js';
import { listVersions, loadVersions, type LoadedVersion } from './scan.js';
import { openDatabase } from './schema.js';
import { VersionTable } from './table.js';
import type { BootTestRecord, CatalogReader, CatalogVersion, RebuildResult, ReconcileResult, SkippedVersion, StoreTotals, VerifyState } from './types.js';

export const CATALOG_FILE = 'catalog.sqlite';

export interface CatalogOpenOptions {
  /** the SQLite file; default `<reader.dir>/catalog.sqlite` */
  file?: string;
  /** where the WARN about a damaged catalog goes; default stderr */
  log?: TaskLog;
}

/** Lines for stderr when the caller gives no log (as the CLI prints them; nothing kept in memory). */
const toStderr =
  (level: LogLevel) =>
  (message: string): void => {
    process.stderr.write(`${formatLogLine({ time: new Date(), level, message })}\n`);
  };
const stderrLog: TaskLog = { info: toStderr('INFO'), warn: toStderr('WARN'), error: toStderr('ERROR') };

export class Catalog {
  #skipped: SkippedVersion[] = [];

  private constructor(
    private readonly reader: CatalogReader,
    private readonly db: Database.Database,
    private readonly table: VersionTable,
    /** the catalog's SQLite file */
    readonly file: string,
  ) {}

  /**
   * Opens `<reader.dir>/catalog.sqlite` (or `opts.file`): a new file is rebuilt, an existing one reconciled.
   * A damaged file is moved aside (WARN on `opts.log`, default stderr) and the catalog rebuilt. On a
   * read-only datastore, where the file cannot be moved, made or brought up to date, the catalog is
   * rebuilt in memory for this process (WARN). A catalog locked by another process is LOCKED, an I/O
   * failure IO: the file is left alone then.
   */
  static async open(reader: CatalogReader, opts: CatalogOpenOptions = {}): Promise<Catalog> {
    const file = opts.file ?? join(reader.dir, CATALOG_FILE);
    const log = opts.log ?? stderrLog;
    try {
      return await Catalog.openFile(reader, file);
    } catch (err) {
      if (err instanceof CatalogDamage) return Catalog.recover(reader, err, log);
      if (!isColdvaultError(err, 'IO') || !onReadOnlyFs(dirname(file))) throw err;
      return Catalog.inMemory(reader, `${describeError(err)}, and the datastore is read-only`, log);
    }
  }

  private static async recover(reader: CatalogReader, damage: CatalogDamage, log: TaskLog): Promise<Catalog> {
    let aside: string | undefined;
    try {
      aside = moveAside(damage);
    } catch (err) {
      if (errnoCode(err) !== 'EROFS') throw ioError(`${damage.message}; moving it aside`, err);
      return Catalog.inMemory(reader, `${damage.message}; the datastore is read-only`, log);
    }
    if (aside) log.warn(`${damage.message}; moved it to '${aside}' and rebuilding the catalog from the datastore`);
    return Catalog.openFile(reader, damage.file);
  }

  private static async inMemory(reader: CatalogReader, why: string, log: TaskLog): Promise<Catalog> {
    log.warn(`${why}, so this command uses a catalog rebuilt in memory`);
    return Catalog.openFile(reader, ':memory:');
  }

  private static async openFile(reader: CatalogReader, file: string): Promise<Catalog> {
    const inode = file === ':memory:' ? undefined : await inodeOf(file);
    const { db, created } = openDatabase(file, inode);
    const catalog = new Catalog(reader, db, new VersionTable(db), file);
    try {
      await (created ? catalog.rebuild() : catalog.reconcile());
    } catch (err) {
      catalog.close();
      throw isSqliteError(err) ? catalogError(file, inode, created ? 'rebuilding' : 'reconciling', err) : err;
    }
    return catalog;
  }

  /** Versions skipped by the last rebuild or reconcile because their manifest was unreadable. */
  get skipped(): readonly SkippedVersion[] {
    return this.#skipped;
  }

  /** Drops every row and re-reads every manifest. Verify state resets to unverified. */
  async rebuild(): Promise<RebuildResult> {
    const { loaded, skipped } = await loadVersions(this.reader, await listVersions(this.reader));
    this.table.inTransaction(() => {
      this.table.clear();
      for (const entry of loaded) this.table.upsert(entry.manifest, entry.protected ?? false);
    });
    this.#skipped = skipped;
    return { versions: loaded.length, guests: countGuests(loaded), skipped };
  }

  /**
   * Adds versions on disk but not in the catalog (reading only their manifests) and deletes rows
   * whose folder is gone; keeps verify state. The catalog's keys are read before the listing, so a
   * version another process records meanwhile is never taken for a removed one.
   */
  async reconcile(): Promise<ReconcileResult> {
    const known = this.table.keys();
    const onDisk = await listVersions(this.reader);
    const present = new Set(onDisk.map((ref) => versionKey(ref.guestId, ref.version)));
    const missing = onDisk.filter((ref) => !known.has(versionKey(ref.guestId, ref.version)));
    const { loaded, skipped } = await loadVersions(this.reader, missing);
    const gone = [...known].filter((key) => !present.has(key));
    // no write lock when nothing changed: a reader is not held up by another process's write
    if (loaded.length > 0 || gone.length > 0) this.applyChanges(loaded, gone);
    this.#skipped = skipped;
    return { added: loaded.length, removed: gone.length, skipped };
  }

  /** Inserts or replaces a version (idempotent: the same manifest again keeps verify state and protection). */
  recordVersion(manifest: Manifest): void {
    this.table.upsert(manifest);
  }

  /** Deletes a version's row; a version not in the catalog is no error (idempotent). */
  removeVersion(guestId: string, version: number): void {
    this.table.remove(guestId, version);
  }

  /** Ordered by guest id (numerically), then version ascending. */
  listVersions(guestId?: string): CatalogVersion[] {
    return this.table.list(guestId);
  }

  getVersion(guestId: string, version: number): CatalogVersion | undefined {
    return this.table.get(guestId, version);
  }

  latestVersion(guestId: string): number | undefined {
    return this.table.latest(guestId);
  }

  /** Records a verification result at the current time; VERSION_NOT_FOUND if the version is not catalogued. */
  markVerified(guestId: string, version: number, state: VerifyState, detail?: string): void {
    const at = new Date().toISOString();
    if (!this.table.setVerify(guestId, version, state, at, detail ?? null)) {
      throw this.notFound(`marking version ${versionKey(guestId, version)} as ${state}`);
    }
  }

  /**
   * Records the result of a boot test; VERSION_NOT_FOUND if the version is not catalogued. Like a
   * verify result it lives only in the catalog: a rebuild resets it (the version's files stay as they were).
   */
  markBootTest(guestId: string, version: number, record: BootTestRecord): void {
    if (!this.table.setBootTest(guestId, version, record)) {
      throw this.notFound(`recording the boot test of version ${versionKey(guestId, version)}`);
    }
  }

  /**
   * Mirrors the `protected` file of a version folder (the engine writes that file, the truth).
   * VERSION_NOT_FOUND if the version is not catalogued.
   */
  setProtected(guestId: string, version: number, value: boolean): void {
    if (!this.table.setProtected(guestId, version, value)) {
      throw this.notFound(`setting protection of version ${versionKey(guestId, version)}`);
    }
  }

  storeTotals(): StoreTotals {
    return this.table.totals();
  }

  /** Closes the connection; idempotent. */
  close(): void {
    if (this.db.open) this.db.close();
  }

  private applyChanges(loaded: LoadedVersion[], gone: string[]): void {
    this.table.inTransaction(() => {
      for (const entry of loaded) this.table.upsert(entry.manifest, entry.protected);
      for (const key of gone) this.removeKey(key);
    });
  }

  private removeKey(key: string): void {
    const slash = key.lastIndexOf('/');
    this.table.remove(key.slice(0, slash), Number(key.slice(slash + 1)));
  }

  private notFound(doing: string): ColdvaultError {
    return new ColdvaultError('VERSION_NOT_FOUND', `${doing} in catalog '${this.file}' failed: no such version`);
  }
}

/** Whether `dir` is on a filesystem mounted read-only (EROFS even for root). */
function onReadOnlyFs(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return false;
  } catch (err) {
    return errnoCode(err) === 'EROFS';
  }
}

function countGuests(loaded: LoadedVersion[]): number {
  return new Set(loaded.map((entry) => entry.manifest.guestId)).size;
}
