/**
 * Base records: what the changed-extent nightly backup must know about a base snapshot, in a small
 * JSON file next to it (`<snapshot path>.base.json`, 0600, written durably once the version the
 * snapshot was read for is published). It ties the snapshot to the version and index its chunks'
 * digests are in, for one datastore, and to the identity of the source disk and of the snapshot file
 * itself, so that nothing but that very file, cloned from that very disk, is ever compared with it:
 *  - datastoreId, guestId, disk, version, index: where the digests are;
 *  - source {dev, ino, size}: the disk when the snapshot was made (another inode or size: full read);
 *  - snapshotPath, snapshot {dev, ino, mtimeNs}: the base file; one replaced by hand (another inode,
 *    or written to) is not the base any more;
 *  - created: when the snapshot was made; lastFullRead: when the chain of changed-extent backups
 *    that led to it last read every chunk (`fullEvery` counts from there).
 * Reading never throws for a missing, damaged or replaced record: it answers the reason, and the
 * backup reads everything (any doubt means read).
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { ColdvaultError, errnoCode, isGuestId } from '../core/index.js';
import { writeFileDurable } from '../datastore/index.js';
import { INDEX_SUFFIX } from '../format/index.js';

export const BASE_RECORD_SUFFIX = '.base.json';
const RECORD_FORMAT = 1;

/** A file's identity: device and inode (decimal strings: exact beyond 2^53), and its size. */
export interface SourceIdentity {
  dev: string;
  ino: string;
  size: number;
}

/** The base snapshot file's own identity: a replaced or rewritten file has another. */
export interface SnapshotIdentity {
  dev: string;
  ino: string;
  mtimeNs: string;
}

export interface BaseRecord {
  format: number;
  datastoreId: string;
  guestId: string;
  disk: string;
  version: number;
  index: string;
  source: SourceIdentity;
  snapshotPath: string;
  snapshot: SnapshotIdentity;
  created: string;
  lastFullRead: string;
}

/** What a caller gives to write a record; the snapshot's identity is read from the file then. */
export type NewBaseRecord = Omit<BaseRecord, 'format' | 'snapshot'>;

export type BaseRecordRead = { record: BaseRecord; reason?: undefined } | { record?: undefined; reason: string };

export function baseRecordPath(snapshotPath: string): string {
  return `${snapshotPath}${BASE_RECORD_SUFFIX}`;
}

/** The identity of the disk at `path` (stat; exact device and inode numbers). */
export async function sourceIdentity(path: string): Promise<SourceIdentity> {
  const s = await stat(path, { bigint: true });
  return { dev: s.dev.toString(), ino: s.ino.toString(), size: Number(s.size) };
}

async function snapshotIdentity(path: string): Promise<SnapshotIdentity> {
  const s = await stat(path, { bigint: true });
  return { dev: s.dev.toString(), ino: s.ino.toString(), mtimeNs: s.mtimeNs.toString() };
}

/** Writes the record of the base snapshot `record.snapshotPath` (durably, 0600), replacing an older one. */
export async function writeBaseRecord(record: NewBaseRecord): Promise<BaseRecord> {
  let snapshot: SnapshotIdentity;
  try {
    snapshot = await snapshotIdentity(record.snapshotPath);
  } catch (err) {
    throw new ColdvaultError('IO', `writing the base record of '${record.snapshotPath}': the snapshot cannot be read (${errnoCode(err) ?? String(err)})`, {
      cause: err,
    });
  }
  const full: BaseRecord = { format: RECORD_FORMAT, ...record, snapshot };
  const path = baseRecordPath(record.snapshotPath);
  await writeFileDurable(path, Buffer.from(`${JSON.stringify(full, null, 2)}\n`), { doing: `writing base record '${path}'` });
  return full;
}

/** Reads and checks the record of the base snapshot at `snapshotPath`; a reason instead when it is no good. */
export async function readBaseRecord(snapshotPath: string): Promise<BaseRecordRead> {
  const path = baseRecordPath(snapshotPath);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return {
      reason:
        errnoCode(err) === 'ENOENT'
          ? `the base snapshot has no record ('${path}' is missing)`
          : `its record '${path}' cannot be read (${errnoCode(err) ?? String(err)})`,
    };
  }
  const problem = recordProblem(text, snapshotPath);
  if (typeof problem === 'string') return { reason: `its record '${path}' is damaged: ${problem}` };
  const replaced = await replacedSnapshot(problem);
  return replaced ? { reason: replaced } : { record: problem };
}

/** Is the base snapshot still the file the record was written for? A reason when it is not. */
async function replacedSnapshot(record: BaseRecord): Promise<string | undefined> {
  let now: SnapshotIdentity;
  try {
    now = await snapshotIdentity(record.snapshotPath);
  } catch (err) {
    return `the base snapshot '${record.snapshotPath}' cannot be read (${errnoCode(err) ?? String(err)})`;
  }
  const was = record.snapshot;
  if (now.dev !== was.dev || now.ino !== was.ino) return `the base snapshot '${record.snapshotPath}' was replaced (inode ${now.ino}, recorded ${was.ino})`;
  if (now.mtimeNs !== was.mtimeNs) return `the base snapshot '${record.snapshotPath}' was written to since it was recorded`;
  return undefined;
}

/** The record, or what is wrong with it. */
function recordProblem(text: string, snapshotPath: string): BaseRecord | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const r = value as Record<string, unknown>;
  const problems = [...fieldProblems(r), ...identityProblems(r)];
  if (problems.length > 0) return problems.join('; ');
  if (r.snapshotPath !== snapshotPath) return `it names the snapshot '${String(r.snapshotPath)}', not '${snapshotPath}'`;
  return r as unknown as BaseRecord;
}

const FIELDS = ['format', 'datastoreId', 'guestId', 'disk', 'version', 'index', 'source', 'snapshotPath', 'snapshot', 'created', 'lastFullRead'];
const INDEX_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;

function fieldProblems(r: Record<string, unknown>): string[] {
  const problems = FIELDS.filter((k) => !Object.hasOwn(r, k)).map((k) => `${k} is missing`);
  problems.push(
    ...Object.keys(r)
      .filter((k) => !FIELDS.includes(k))
      .map((k) => `${k} is not a field of a base record`),
  );
  const check = (ok: boolean, what: string): void => {
    if (!ok) problems.push(what);
  };
  check(r.format === RECORD_FORMAT, `format must be ${RECORD_FORMAT}`);
  check(typeof r.datastoreId === 'string' && /^[0-9a-f-]{8,64}$/.test(r.datastoreId), 'datastoreId must be a datastore id');
  check(typeof r.guestId === 'string' && isGuestId(r.guestId), 'guestId must be a guest id');
  check(typeof r.disk === 'string' && /^[a-z]+[0-9]+$/.test(r.disk), 'disk must be a disk key such as scsi0');
  check(Number.isSafeInteger(r.version) && (r.version as number) >= 1, 'version must be a version number');
  check(
    typeof r.index === 'string' && INDEX_NAME.test(r.index) && r.index.endsWith(INDEX_SUFFIX) && !r.index.includes('..'),
    'index must be an index file name',
  );
  check(typeof r.snapshotPath === 'string' && r.snapshotPath.startsWith('/'), 'snapshotPath must be an absolute path');
  for (const k of ['created', 'lastFullRead']) check(typeof r[k] === 'string' && !Number.isNaN(Date.parse(r[k])), `${k} must be a time`);
  return problems;
}

function identityProblems(r: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const ident = (v: unknown, name: string, keys: string[]): void => {
    if (typeof v !== 'object' || v === null) return void problems.push(`${name} must be an object`);
    const o = v as Record<string, unknown>;
    for (const k of keys)
      if (!(k === 'size' ? Number.isSafeInteger(o[k]) && (o[k] as number) >= 0 : typeof o[k] === 'string' && DECIMAL.test(o[k])))
        problems.push(`${name}.${k} is not valid`);
    for (const k of Object.keys(o)) if (!keys.includes(k)) problems.push(`${name}.${k} is not a field of a base record`);
  };
  if (Object.hasOwn(r, 'source')) ident(r.source, 'source', ['dev', 'ino', 'size']);
  if (Object.hasOwn(r, 'snapshot')) ident(r.snapshot, 'snapshot', ['dev', 'ino', 'mtimeNs']);
  return problems;
}

/** Removes the record of a base snapshot (idempotent). */
export async function removeBaseRecord(snapshotPath: string): Promise<void> {
  await rm(baseRecordPath(snapshotPath), { force: true });
}
