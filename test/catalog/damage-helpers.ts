/**
 * Damaging a real catalog file the ways a disk, a crash or a person does, and holding its lock from
 * another process (a second node process with better-sqlite3, as a second coldvault would).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import Database from 'better-sqlite3';
import { prng } from '../helpers/fixtures.js';

export const DAMAGES = ['garbage', 'truncated', 'foreign', 'flipped page', 'schema'] as const;
export type Damage = (typeof DAMAGES)[number];

/** Damages the (healthy, closed) catalog `file`; returns the damaged bytes. */
export function damage(file: string, kind: Damage): Buffer {
  if (kind === 'garbage') writeFileSync(file, garbage(8192));
  if (kind === 'truncated') truncateSync(file, Math.floor(readFileSync(file).length / 2) + 100);
  if (kind === 'foreign') foreign(file);
  if (kind === 'flipped page') flipMiddlePage(file);
  if (kind === 'schema') sql(file, 'DROP TABLE disks; CREATE TABLE disks (note TEXT)');
  return readFileSync(file);
}

function garbage(length: number): Buffer {
  const next = prng(4242);
  return Buffer.from(Array.from({ length }, () => next() & 0xff));
}

/** A valid SQLite file of something else (no user_version, other tables). */
function foreign(file: string): void {
  rmSync(file);
  sql(file, "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes (text) VALUES ('not a catalog')");
}

function sql(file: string, statements: string): void {
  const db = new Database(file);
  db.exec(statements);
  db.close();
}

/** Inverts the b-tree header of the page in the middle of the file (never page 1, the file header). */
function flipMiddlePage(file: string): void {
  const bytes = readFileSync(file);
  const pageSize = bytes.readUInt16BE(16) === 1 ? 65536 : bytes.readUInt16BE(16);
  const pages = bytes.length / pageSize;
  if (pages < 3) throw new Error(`catalog ${file} has ${pages} pages: too small to damage a middle one`);
  const start = Math.floor(pages / 2) * pageSize;
  for (let i = start; i < start + 12; i++) bytes[i] = (bytes[i] as number) ^ 0xff;
  writeFileSync(file, bytes);
}

/** What SQLite says about the file: 'ok', or the first problem (quick_check's or the error's). */
export function sqliteHealth(file: string): string {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const rows = db.pragma('quick_check') as Array<{ quick_check: string }>;
    const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
    const names = tables.map((t) => t.name).join(',');
    if (rows[0]?.quick_check !== 'ok') return rows[0]?.quick_check ?? 'no answer';
    return names === 'disks,versions' && (db.pragma('table_info(disks)', { simple: false }) as unknown[]).length > 1 ? 'ok' : `tables ${names}`;
  } catch (err) {
    return (err as Error).message;
  } finally {
    db?.close();
  }
}

/** The names of the moved-aside files next to `file`. */
export function asideFiles(file: string): string[] {
  return readdirSync(dirname(file))
    .filter((n) => n.startsWith(`${basename(file)}.damaged-`))
    .sort();
}

export interface LockHolder {
  child: ChildProcess;
  release(): Promise<void>;
}

/**
 * Another process takes the catalog's lock and holds it until released: 'write' = a write
 * transaction in progress (BEGIN IMMEDIATE and an uncommitted insert: readers go on), 'exclusive' =
 * BEGIN EXCLUSIVE (what a commit holds: nobody reads).
 */
export function holdLock(file: string, mode: 'write' | 'exclusive'): Promise<LockHolder> {
  const script = `
    import Database from 'better-sqlite3';
    const db = new Database(process.argv[1]);
    db.exec(process.argv[2] === 'write' ? "BEGIN IMMEDIATE; DELETE FROM versions" : 'BEGIN EXCLUSIVE');
    db.pragma('quick_check');
    process.stdout.write('locked\\n');
    process.stdin.resume();
    process.stdin.on('end', () => { db.exec('ROLLBACK'); db.close(); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, file, mode], { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const release = async (): Promise<void> => {
    child.stdin?.end();
    await exited;
  };
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', () => resolve({ child, release }));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`lock holder exited ${code} before locking`)));
  });
}
