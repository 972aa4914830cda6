/**
 * The catalog's SQLite schema and how a file is opened. The schema version is `PRAGMA user_version`;
 * MIGRATIONS[i] takes a file from version i to i + 1, so a future schema adds a step and never edits
 * one. A file with a higher version than this build knows is refused (DATASTORE_TOO_NEW).
 *
 * Journal mode DELETE (not WAL): WAL needs shared memory, which NTFS/exFAT/FUSE mounts (USB disks,
 * network shares) do not reliably give. synchronous EXTRA: in DELETE mode a transaction commits when
 * its journal file is deleted, and only EXTRA fsyncs the folder after that delete; with FULL a power
 * cut soon after a commit brings the journal back and SQLite rolls the transaction back (a `protect`
 * or the last `verify` result lost; test/powercut/scenarios.test.ts). busy_timeout 5000 ms so that
 * two processes on one file wait for each other's write lock instead of failing.
 *
 * Every open checks the file (damage.ts says what counts as damage): SQLite must read it, its schema
 * must be exactly what the migrations make (a SQLite file of something else is not written into), and
 * `PRAGMA quick_check` must pass (a damaged page can hide behind a query that never reads it).
 */
import Database from 'better-sqlite3';
import { ColdvaultError } from '../core/index.js';
import { createPrivateFile } from '../datastore/index.js';
import { CatalogDamage, catalogError } from './damage.js';

const SCHEMA_V1 = `
CREATE TABLE versions (
  guest_id      TEXT    NOT NULL,
  version       INTEGER NOT NULL,
  time          TEXT    NOT NULL,
  name          TEXT    NOT NULL,
  node          TEXT    NOT NULL,
  logical_bytes INTEGER NOT NULL,
  zero_bytes    INTEGER NOT NULL,
  new_bytes     INTEGER NOT NULL,
  stored_bytes  INTEGER NOT NULL,
  chunk_count   INTEGER NOT NULL,
  verify_state  TEXT    NOT NULL DEFAULT 'unverified' CHECK (verify_state IN ('unverified', 'ok', 'failed')),
  verified_at   TEXT,
  verify_detail TEXT,
  protected     INTEGER NOT NULL DEFAULT 0 CHECK (protected IN (0, 1)),
  PRIMARY KEY (guest_id, version)
) WITHOUT ROWID;

CREATE TABLE disks (
  guest_id    TEXT    NOT NULL,
  version     INTEGER NOT NULL,
  position    INTEGER NOT NULL,
  key         TEXT    NOT NULL,
  volume      TEXT    NOT NULL,
  format      TEXT    NOT NULL,
  size        INTEGER NOT NULL,
  sha256      TEXT    NOT NULL,
  zero_bytes  INTEGER NOT NULL,
  chunk_count INTEGER NOT NULL,
  zero_chunks INTEGER NOT NULL,
  PRIMARY KEY (guest_id, version, position),
  FOREIGN KEY (guest_id, version) REFERENCES versions (guest_id, version) ON DELETE CASCADE
) WITHOUT ROWID;
`;

/**
 * v2: verify_state may be 'incomplete' (not fully checked: I/O errors). SQLite cannot change a CHECK
 * in place: both tables are copied to new ones; disks first dropped, so dropping versions cascades
 * nothing; the renames rewrite the foreign key to the final name.
 */
const V2_VERIFY_INCOMPLETE = `
CREATE TABLE versions_v2 (
  guest_id      TEXT    NOT NULL,
  version       INTEGER NOT NULL,
  time          TEXT    NOT NULL,
  name          TEXT    NOT NULL,
  node          TEXT    NOT NULL,
  logical_bytes INTEGER NOT NULL,
  zero_bytes    INTEGER NOT NULL,
  new_bytes     INTEGER NOT NULL,
  stored_bytes  INTEGER NOT NULL,
  chunk_count   INTEGER NOT NULL,
  verify_state  TEXT    NOT NULL DEFAULT 'unverified' CHECK (verify_state IN ('unverified', 'ok', 'failed', 'incomplete')),
  verified_at   TEXT,
  verify_detail TEXT,
  protected     INTEGER NOT NULL DEFAULT 0 CHECK (protected IN (0, 1)),
  PRIMARY KEY (guest_id, version)
) WITHOUT ROWID;
CREATE TABLE disks_v2 (
  guest_id    TEXT    NOT NULL,
  version     INTEGER NOT NULL,
  position    INTEGER NOT NULL,
  key         TEXT    NOT NULL,
  volume      TEXT    NOT NULL,
  format      TEXT    NOT NULL,
  size        INTEGER NOT NULL,
  sha256      TEXT    NOT NULL,
  zero_bytes  INTEGER NOT NULL,
  chunk_count INTEGER NOT NULL,
  zero_chunks INTEGER NOT NULL,
  PRIMARY KEY (guest_id, version, position),
  FOREIGN KEY (guest_id, version) REFERENCES versions_v2 (guest_id, version) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO versions_v2 SELECT * FROM versions;
INSERT INTO disks_v2 SELECT * FROM disks;
DROP TABLE disks;
DROP TABLE versions;
ALTER TABLE versions_v2 RENAME TO versions;
ALTER TABLE disks_v2 RENAME TO disks;
`;

/**
 * v3: how long the guest was off for the backup (manifest `downtimeMs`), NULL when the manifest has
 * none. Rows already there keep NULL, which is right: they came from manifests read by a build that
 * refused a manifest with `downtimeMs` (an unknown field then), so none of them has one.
 */
const V3_DOWNTIME = 'ALTER TABLE versions ADD COLUMN downtime_ms INTEGER';

/**
 * v4: the key an encrypted version was made with (manifest `encryption.fingerprint`), NULL for an
 * unencrypted one. Rows already there keep NULL, which is right for the same reason as in v3.
 */
const V4_KEY = 'ALTER TABLE versions ADD COLUMN key_fingerprint TEXT';

/**
 * v5: the last boot test of the version (`coldvault boot-test`): passed or not, how long the guest took
 * to give its signal (or how long it was waited for), which signal, when, and why it failed. NULL until
 * the version is boot-tested. Like the verify result, it lives only here: a rebuild resets it.
 */
const V5_BOOT_TEST = `
ALTER TABLE versions ADD COLUMN boot_ok INTEGER CHECK (boot_ok IN (0, 1));
ALTER TABLE versions ADD COLUMN boot_seconds REAL;
ALTER TABLE versions ADD COLUMN boot_signal TEXT;
ALTER TABLE versions ADD COLUMN boot_at TEXT;
ALTER TABLE versions ADD COLUMN boot_detail TEXT;
`;

const MIGRATIONS: readonly string[] = [SCHEMA_V1, V2_VERIFY_INCOMPLETE, V3_DOWNTIME, V4_KEY, V5_BOOT_TEST];

/** The schema version this build writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.length;

export interface OpenedDatabase {
  db: Database.Database;
  /** true when the file had no schema yet (new or empty): the caller fills it by a rebuild */
  created: boolean;
}

/**
 * Opens (creating if needed) the catalog file, sets the pragmas, brings the schema up to date and
 * checks the file: CatalogDamage when it is not a coldvault catalog in good health (`inode`: of the
 * file as found before opening, for moving it aside safely), LOCKED/NO_SPACE/IO for trouble.
 */
export function openDatabase(file: string, inode: number | undefined): OpenedDatabase {
  let db: Database.Database;
  try {
    if (file !== ':memory:') createPrivateFile(file); // 0600; SQLite gives its -journal the same mode (an in-memory catalog has no file)
    db = new Database(file);
  } catch (err) {
    throw catalogError(file, inode, 'opening', err);
  }
  try {
    setPragmas(db);
    const created = migrate(db, file, inode);
    checkSchema(db, file, inode);
    if (!created) checkIntegrity(db, file, inode);
    return { db, created };
  } catch (err) {
    db.close();
    throw catalogError(file, inode, 'opening', err);
  }
}

function setPragmas(db: Database.Database): void {
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = DELETE');
  db.pragma('synchronous = EXTRA');
  db.pragma('foreign_keys = ON');
}

function userVersion(db: Database.Database): number {
  return Number(db.pragma('user_version', { simple: true }));
}

/** Applies the missing migrations under a write lock; returns whether the schema was created. */
function migrate(db: Database.Database, file: string, inode: number | undefined): boolean {
  if (userVersion(db) === SCHEMA_VERSION) return false;
  const step = db.transaction((): boolean => {
    const current = userVersion(db);
    if (current > SCHEMA_VERSION) throw tooNew(file, current);
    if (current === 0 && schemaOf(db).length > 0) {
      throw new CatalogDamage(file, `not a coldvault catalog (it holds ${schemaOf(db).join(', ')})`, inode);
    }
    for (const sql of MIGRATIONS.slice(current)) db.exec(sql);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return current === 0;
  });
  return step.immediate();
}

/** The file's tables and indexes must be exactly those the migrations make. */
function checkSchema(db: Database.Database, file: string, inode: number | undefined): void {
  const found = schemaOf(db);
  const expected = expectedSchema();
  if (found.join('\n') === expected.join('\n')) return;
  const odd = [...found.filter((s) => !expected.includes(s)), ...expected.filter((s) => !found.includes(s))];
  throw new CatalogDamage(file, `its schema is not the one of catalog version ${SCHEMA_VERSION} (differs in: ${odd.map(firstLine).join('; ')})`, inode);
}

/** `PRAGMA quick_check`: every page and b-tree of the file is read and checked (not the index contents). */
function checkIntegrity(db: Database.Database, file: string, inode: number | undefined): void {
  const rows = db.pragma('quick_check') as Array<{ quick_check: string }>;
  if (rows.length === 1 && rows[0]?.quick_check === 'ok') return;
  const problems = rows.map((r) => r.quick_check.replace(/\s+/g, ' ').trim()).join('; '); // one log line
  throw new CatalogDamage(file, `its integrity check failed: ${problems.length > 300 ? `${problems.slice(0, 300)}...` : problems}`, inode);
}

function schemaOf(db: Database.Database): string[] {
  const rows = db.prepare<[], { type: string; name: string; sql: string | null }>('SELECT type, name, sql FROM sqlite_master ORDER BY type, name').all();
  return rows.map((r) => `${r.type} ${r.name}: ${r.sql ?? ''}`);
}

let expected: string[] | undefined;

/** The schema the migrations give, made once in memory. */
function expectedSchema(): string[] {
  if (!expected) {
    const db = new Database(':memory:');
    for (const sql of MIGRATIONS) db.exec(sql);
    expected = schemaOf(db);
    db.close();
  }
  return expected;
}

function firstLine(entry: string): string {
  return entry.split('\n')[0] ?? entry;
}

function tooNew(file: string, found: number): ColdvaultError {
  return new ColdvaultError(
    'DATASTORE_TOO_NEW',
    `opening catalog '${file}' failed: its schema version ${found} is newer than this coldvault reads ` + `(up to ${SCHEMA_VERSION}); upgrade coldvault`,
  );
}
