/**
 * The changed-extent nightly backup: which chunks of a disk's cold snapshot need to be read. With a
 * read plan that names a base (the snapshot an earlier backup of this disk read, kept for this
 * datastore, see base-record.ts), the extent maps of both files (FIEMAP with FIEMAP_FLAG_SYNC) say
 * which chunks nobody wrote since (changed-extents.ts); their digests come from the base version's
 * index and are touched in the store instead of being read (backup-disk.ts). Everything else is read
 * and hashed as always.
 *
 * Any doubt means read: every chunk is read, with one log line saying why, when
 *  - the backup was asked for a full read (`backup --full`), or the chain's last full read is older
 *    than `fullEvery` days;
 *  - the native addon (FIEMAP) is not built, or FIEMAP is refused on either file;
 *  - the base record is missing or damaged, names another datastore, guest, disk, version or index,
 *    or its snapshot file was replaced or written to, or lies on another filesystem than the new
 *    snapshot (physical addresses mean nothing across filesystems);
 *  - the source disk is another file (device, inode) or has another size than at the base;
 *  - the base version, its manifest entry or its index is gone, damaged, or of another size.
 * Extents with flags beyond SHARED and LAST (unknown, delalloc, encoded, unwritten, ...) make only
 * their chunks read, also with a log line.
 */
import { open, stat } from 'node:fs/promises';
import { describeError, FIEMAP_EXTENT, type FileExtent, formatBytes, loadNative, type TaskLog } from '../core/index.js';
import type { Datastore } from '../datastore/index.js';
import { CHUNK_SIZE } from '../format/index.js';
import { readBaseRecord, sourceIdentity, type BaseRecord, type NewBaseRecord, type SourceIdentity } from './base-record.js';
import type { ImageInfo } from './images.js';
import { unchangedChunks } from './changed-extents.js';
import type { DiskCounters } from './backup-disk.js';

/** Days after which a chain of changed-extent backups reads everything again (a job's `fullEvery`). */
export const DEFAULT_FULL_EVERY_DAYS = 7;
const DAY_MS = 86_400_000;

/**
 * A base snapshot of the disk, as a read plan names it (pipeline/backup.ts DiskReadPlan). Its record
 * says which version and index hold its chunks; a caller that expects a certain one names it too.
 */
export interface PlannedBase {
  snapshotPath: string;
  version?: number;
  index?: string;
}

export interface ChangedReadRequest {
  store: Datastore;
  guestId: string;
  /** the disk's key, and its path as the guest uses it (the source of the snapshot) */
  key: string;
  sourcePath: string;
  /** the snapshot to read, and its size */
  readPath: string;
  size: number;
  base?: PlannedBase;
  full?: boolean;
  fullEvery?: number;
  /** the key this version is encrypted with (undefined: not encrypted); a base must have been made with the same */
  keyFingerprint?: string;
  log: TaskLog;
}

/** How one disk is read: the chunks taken from a base (with their digests), or none. */
export interface DiskReadSpec {
  /** chunk index -> digest in the base version (null: a zero chunk) */
  fromBase?: ReadonlyMap<number, Buffer | null>;
  baseVersion?: number;
  /** why every chunk is read (undefined: the base is used) */
  fullReason?: string;
  /** the source's identity now (device, inode; the snapshot's size) for the next base record */
  source: SourceIdentity;
  /** when the snapshot was made, and when the chain it starts or continues last read everything */
  created: string;
  lastFullRead: string;
}

class FullRead extends Error {}
const doubt = (reason: string): never => {
  throw new FullRead(reason);
};

/** Decides how the snapshot of one disk is read; logs the reason for a full read. */
export async function planChangedRead(req: ChangedReadRequest): Promise<DiskReadSpec> {
  const source = { ...(await sourceIdentity(req.sourcePath)), size: req.size };
  const created = (await stat(req.readPath)).mtime.toISOString();
  if (!req.base) return { source, created, lastFullRead: created };
  try {
    const { record, fromBase } = await compareWithBase(req, req.base, source);
    return { fromBase, baseVersion: record.version, source, created, lastFullRead: record.lastFullRead };
  } catch (err) {
    const reason = err instanceof FullRead ? err.message : `comparing with the base failed: ${describeError(err)}`;
    req.log.info(`disk '${req.key}': reading every chunk: ${reason}`);
    return { fullReason: reason, source, created, lastFullRead: created };
  }
}

async function compareWithBase(
  req: ChangedReadRequest,
  base: PlannedBase,
  source: SourceIdentity,
): Promise<{ record: BaseRecord; fromBase: Map<number, Buffer | null> }> {
  if (req.full) doubt('a full read was asked for');
  if (!loadNative()?.extents) doubt('the native addon (FIEMAP) is not built');
  const read = await readBaseRecord(base.snapshotPath);
  const record = read.record ?? doubt(read.reason ?? 'no base record');
  checkRecord(req, base, record, source);
  await checkSameFilesystem(req.readPath, record);
  const digests = await baseDigests(req, record);
  await req.store.checkpoint('backup:base-read');
  const [was, now] = [await extentMap(base.snapshotPath), await extentMap(req.readPath)];
  logOddFlags(req, [...was, ...now]);
  const fromBase = new Map<number, Buffer | null>();
  for (const i of unchangedChunks(was, now, req.size, CHUNK_SIZE)) fromBase.set(i, digests[i] ?? null);
  return { record, fromBase };
}

function checkRecord(req: ChangedReadRequest, base: PlannedBase, r: BaseRecord, source: SourceIdentity): void {
  const other = (what: string, recorded: unknown, wanted: unknown): void => {
    if (recorded !== wanted) doubt(`the base record names ${what} ${String(recorded)}, not ${String(wanted)}`);
  };
  other('the datastore', r.datastoreId, req.store.identity.id);
  other('the guest', r.guestId, req.guestId);
  other('the disk', r.disk, req.key);
  if (base.version !== undefined) other('version', r.version, base.version);
  if (base.index !== undefined) other('the index', r.index, base.index);
  if (r.source.dev !== source.dev || r.source.ino !== source.ino) {
    doubt(`the disk '${req.sourcePath}' is another file than at the base (device ${source.dev} inode ${source.ino}, recorded ${r.source.dev}/${r.source.ino})`);
  }
  if (r.source.size !== req.size) doubt(`the disk was resized: ${req.size} bytes now, ${r.source.size} at the base`);
  const ageDays = (Date.now() - Date.parse(r.lastFullRead)) / DAY_MS;
  const every = req.fullEvery ?? DEFAULT_FULL_EVERY_DAYS;
  if (ageDays >= every) doubt(`the last full read was ${ageDays.toFixed(1)} days ago (fullEvery ${every})`);
}

/** Physical addresses compare only within one filesystem: the snapshot must be on the base's. */
async function checkSameFilesystem(readPath: string, r: BaseRecord): Promise<void> {
  const dev = (await stat(readPath, { bigint: true })).dev.toString();
  if (dev !== r.snapshot.dev) doubt(`the snapshot '${readPath}' is on another filesystem than the base (device ${dev}, base ${r.snapshot.dev})`);
}

/** The digests of the base version's index of this disk, checked against its manifest and the size. */
async function baseDigests(req: ChangedReadRequest, r: BaseRecord): Promise<Array<Buffer | null>> {
  const where = `the base version ${r.version}`;
  try {
    const manifest = await req.store.readManifest(req.guestId, r.version);
    const baseKey = manifest.encryption?.fingerprint;
    if (baseKey !== req.keyFingerprint) doubt(`${where} was made ${keyWords(baseKey)}, this backup ${keyWords(req.keyFingerprint)}`); // its chunk names are another key's
    const disk = manifest.disks.find((d) => d.key === r.disk);
    if (disk?.index !== r.index || disk.size !== req.size) doubt(`${where} has no index '${r.index}' of ${req.size} bytes for disk '${r.disk}'`);
    const index = await req.store.readIndex(req.guestId, r.version, r.index);
    if (index.size !== req.size || index.chunkSize !== CHUNK_SIZE) doubt(`${where}'s index '${r.index}' is of another size`);
    return index.digests;
  } catch (err) {
    if (err instanceof FullRead) throw err;
    return doubt(`${where} or its index cannot be read: ${describeError(err)}`);
  }
}

const keyWords = (fingerprint: string | undefined): string => (fingerprint ? `with key ${fingerprint}` : 'without encryption');

async function extentMap(path: string): Promise<FileExtent[]> {
  const file = await open(path, 'r');
  try {
    return (loadNative()?.extents ?? doubt('the native addon (FIEMAP) is not built'))(file.fd, true);
  } catch (err) {
    if (err instanceof FullRead) throw err;
    return doubt(`FIEMAP was refused on '${path}': ${(err as { code?: string }).code ?? describeError(err)}`);
  } finally {
    await file.close();
  }
}

const TRUSTED = FIEMAP_EXTENT.SHARED | FIEMAP_EXTENT.LAST;

function logOddFlags(req: ChangedReadRequest, extents: FileExtent[]): void {
  const odd = extents.filter((e) => e.logical < req.size && (e.flags & ~TRUSTED) !== 0);
  if (odd.length === 0) return;
  const bits = odd.reduce((all, e) => all | (e.flags & ~TRUSTED), 0);
  const names = Object.entries(FIEMAP_EXTENT)
    .filter(([, bit]) => bits & bit)
    .map(([name]) => name.toLowerCase());
  req.log.info(`disk '${req.key}': ${odd.length} extent(s) carry flags beyond shared/last (${names.join(', ')}): their chunks are read`);
}

/** The log line after a disk read with a base: what was read and what was taken from the base. */
export function logChangedSinceBase(log: TaskLog, key: string, spec: DiskReadSpec | undefined, c: DiskCounters): void {
  if (spec?.baseVersion === undefined) return;
  const gone = c.baseGoneChunks > 0 ? `; ${c.baseGoneChunks} chunk(s) of the base were gone from the store and were read` : '';
  log.info(
    `disk '${key}': changed since the base (version ${spec.baseVersion}): read ${formatBytes(c.fileReadBytes)}, taken from the base ${formatBytes(c.baseBytes)} (${c.baseChunks} ${c.baseChunks === 1 ? 'chunk' : 'chunks'})${gone}`,
  );
}

/** What a backup did with one disk: read (bytes), taken from a base (bytes), and the record of the next base. */
export interface DiskReadReport {
  key: string;
  /** the file read: the disk, or its snapshot */
  readPath: string;
  fileReadBytes: number;
  baseBytes: number;
  baseVersion?: number;
  fullReason?: string;
  /** with a read plan: the base record for the snapshot once the version is published (add snapshotPath) */
  nextBase?: Omit<NewBaseRecord, 'snapshotPath'>;
}

/**
 * How one planned disk is read: with a read plan (its snapshot, already in `disk.readPath`, its size in
 * `disk.info`), compared with the plan's base; without one (the disk itself is read) no spec.
 */
export async function planDiskRead(
  req: Omit<ChangedReadRequest, 'key' | 'sourcePath' | 'readPath' | 'size' | 'base'>,
  disk: { key: string; path: string; readPath: string; info: ImageInfo },
  plan: { readPath: string; base?: PlannedBase } | undefined,
): Promise<DiskReadSpec | undefined> {
  if (!plan) return undefined;
  return planChangedRead({ ...req, key: disk.key, sourcePath: disk.path, readPath: disk.readPath, size: disk.info.size, base: plan.base });
}

/** The report of one disk, after its index was written (`disk`, of version `at.version`). */
export function diskReadReport(
  at: { datastoreId: string | undefined; guestId: string; version: number },
  disk: { key: string; index: string },
  readPath: string,
  spec: DiskReadSpec | undefined,
  c: DiskCounters,
): DiskReadReport {
  const { key, index } = disk;
  const report: DiskReadReport = {
    key,
    readPath,
    fileReadBytes: c.fileReadBytes,
    baseBytes: c.baseBytes,
    baseVersion: spec?.baseVersion,
    fullReason: spec?.fullReason,
  };
  if (!spec || at.datastoreId === undefined) return report;
  const { source, created, lastFullRead } = spec;
  return {
    ...report,
    nextBase: { datastoreId: at.datastoreId, guestId: at.guestId, disk: key, version: at.version, index, source, created, lastFullRead },
  };
}
