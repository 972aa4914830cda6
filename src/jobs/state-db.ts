/**
 * The state database `<stateDir>/coldvault.sqlite`: jobs, tasks and their log lines, the scheduler's
 * record of runs, and the journal of guests that coldvault has stopped and not yet started again.
 * Several processes (serve, `job run`, `task log -f`) open it at once: WAL mode (the state dir is on a
 * local disk), busy_timeout, short IMMEDIATE transactions. The state dir is 0700 and the database
 * 0600 (with its -wal and -shm, which SQLite creates with the database's mode): it holds the admin
 * password hash, the API tokens' hashes and every task log.
 *
 * Schema versions (PRAGMA user_version): SCHEMA is version 1 as first released (run at every open:
 * it only creates what is missing); each entry of MIGRATIONS takes the database one version up, all
 * in one IMMEDIATE transaction (two processes opening an old database at once migrate it once). A
 * database newer than this code is refused.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ColdvaultError } from '../core/index.js';
import { createPrivateFile, PRIVATE_DIR } from '../datastore/index.js';

/** MIGRATIONS[i] takes version i + 1 to i + 2. */
const MIGRATIONS: readonly string[] = [
  'ALTER TABLE tasks ADD COLUMN started_by TEXT', // 2: who started a task (token, web login, scheduler, CLI user)
  // 3: the boot a task was started in: after a reboot its pid may belong to another process (the
  // journal adds its own columns: journal.ts)
  'ALTER TABLE tasks ADD COLUMN boot TEXT',
];
const SCHEMA_VERSION = 1 + MIGRATIONS.length;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, json TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY, type TEXT NOT NULL, job_id TEXT, node TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('running','ok','failed')),
  start TEXT NOT NULL, end TEXT, pid INTEGER NOT NULL, host TEXT NOT NULL, summary TEXT, result TEXT);
CREATE INDEX IF NOT EXISTS tasks_by_start ON tasks (start);
CREATE INDEX IF NOT EXISTS tasks_by_job ON tasks (job_id, status);
CREATE TABLE IF NOT EXISTS task_lines (task_id TEXT NOT NULL, n INTEGER NOT NULL, time TEXT NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL, PRIMARY KEY (task_id, n));
CREATE TABLE IF NOT EXISTS job_runs (job_id TEXT PRIMARY KEY, last_scheduled TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (vmid TEXT NOT NULL, task_id TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL, stopped_at TEXT NOT NULL, PRIMARY KEY (vmid, task_id));
`;

export type StateDb = Database.Database;

function migrate(db: StateDb): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number; // again, inside the lock
    if (version >= SCHEMA_VERSION) return;
    for (let v = Math.max(version, 1); v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v - 1] as string);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

export function openStateDb(stateDir: string): StateDb {
  try {
    mkdirSync(stateDir, { recursive: true, mode: PRIVATE_DIR });
    createPrivateFile(join(stateDir, 'coldvault.sqlite'));
    const db = new Database(join(stateDir, 'coldvault.sqlite'));
    db.pragma('busy_timeout = 10000');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      db.close();
      throw new ColdvaultError('DATASTORE_TOO_NEW', `state database in '${stateDir}' has schema ${version}, newer than this coldvault (${SCHEMA_VERSION})`);
    }
    db.exec(SCHEMA);
    migrate(db);
    return db;
  } catch (err) {
    if (err instanceof ColdvaultError) throw err;
    throw new ColdvaultError('IO', `opening the state database in '${stateDir}' failed: ${(err as Error).message}`, { cause: err });
  }
}
