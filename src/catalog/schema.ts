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
 */
import Database from 'better-sqlite3';
import { ColdvaultError, errnoCode, ioError } from '../core/errors.js';

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

const MIGRATIONS: readonly string[] = [SCHEMA_V1];

/** The schema version this build writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.length;

export interface OpenedDatabase {
  db: Database.Database;
  /** true when the file had no schema yet (new or empty): the caller fills it by a rebuild */
  created: boolean;
}

/** Opens (creating if needed) the catalog file, sets the pragmas and brings the schema up to date. */
export function openDatabase(file: string): OpenedDatabase {
  let db: Database.Database;
  try {
    db = new Database(file);
  } catch (err) {
    throw openError(file, err);
  }
  try {
    setPragmas(db);
    return { db, created: migrate(db, file) };
  } catch (err) {
    db.close();
    throw openError(file, err);
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
function migrate(db: Database.Database, file: string): boolean {
  if (userVersion(db) === SCHEMA_VERSION) return false;
  const step = db.transaction((): boolean => {
    const current = userVersion(db);
    if (current > SCHEMA_VERSION) throw tooNew(file, current);
    for (const sql of MIGRATIONS.slice(current)) db.exec(sql);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return current === 0;
  });
  return step.immediate();
}

function tooNew(file: string, found: number): ColdvaultError {
  return new ColdvaultError(
    'DATASTORE_TOO_NEW',
    `opening catalog '${file}' failed: its schema version ${found} is newer than this coldvault reads ` +
      `(up to ${SCHEMA_VERSION}); upgrade coldvault`,
  );
}

function openError(file: string, err: unknown): ColdvaultError {
  const code = errnoCode(err);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new ColdvaultError(
      'DATASTORE_CORRUPT',
      `opening catalog '${file}' failed: not a readable SQLite database (${code}); ` +
        'delete the file and coldvault rebuilds it from the datastore',
      { cause: err },
    );
  }
  return ioError(`opening catalog '${file}'`, err);
}
