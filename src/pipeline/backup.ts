/**
 * The backup of one guest (its disks must not change meanwhile: the job layer stops the guest).
 * hold the target (local: lock guest, register the writer) -> read config -> select disks -> space
 * check -> [beforeArchive: the guest is frozen] -> open a version -> back up each disk -> sync chunk
 * folders -> [beforePublish] -> manifest -> publish -> catalog -> keep-N rotation. The target is a
 * local datastore or another node's (backup-target.ts: the order and why it is crash-safe). The
 * version log is written in vzdump's style and kept with the version.
 */
import PQueue from 'p-queue';
import {
  createTaskLog,
  describeError,
  type Downtime,
  downtimeMillis,
  formatDowntime,
  formatBytes,
  formatDuration,
  formatLogLine,
  formatRate,
  logAt,
  type LogLine,
  percent,
  type ProgressListener,
  type TaskLog,
} from '../core/index.js';
import {
  encodeFixedIndex,
  CHUNK_SIZE,
  INDEX_SUFFIX,
  VERSION_CONFIG_FILE,
  DATASTORE_FORMAT,
  type Manifest,
  type ManifestDisk,
  sealedConfigNote,
  sealManifest,
  type VersionKey,
} from '../format/index.js';
import type { Datastore } from '../datastore/index.js';
import { archivedConfigText, guestName, readGuestConfig, resolveBackupDisk, selectBackupDisks, type BackupDisk, type StorageMap } from '../guests/index.js';
import type { Catalog } from '../catalog/index.js';
import { blobBufferPool, BufferPool } from './buffers.js';
import { Window } from './limits.js';
import { backupDisk, newCounters, type BackupDiskResult, type DiskCounters } from './backup-disk.js';
import { confirmReused, type WrittenDisk } from './backup-reuse.js';
import { imageInfo, type ImageInfo } from './images.js';
import { diskReadReport, logChangedSinceBase, planDiskRead, type DiskReadReport } from './changed-read.js';
import type { BackupTarget, HeldTarget, VersionWriter } from './backup-target.js';
import { LocalTarget } from './local-target.js';
import { ProgressMeter } from './progress-meter.js';
import type { ChunkCodec, WorkerPool } from './worker-pool.js';

/** Where and how one disk is read (cold snapshots). */
export interface DiskReadPlan {
  /** read this instead of the disk: its cold snapshot, a frozen copy of the disk at shutdown */
  readPath: string;
  /**
   * a base snapshot of the same disk, for this datastore: chunks whose bytes lie in extents shared at
   * the same physical place in both files are taken from the base version's index (touched), not read.
   * Its record (base-record.ts) names that version and index; `version`/`index`, when given, must match.
   */
  base?: { snapshotPath: string; version?: number; index?: string };
}

/** Where the version goes: a local datastore and its catalog, or a target (a node's datastore: remote-target.ts). */
export type BackupRequest = LocalBackupRequest | (BackupOptions & { target: BackupTarget });
export type LocalBackupRequest = BackupOptions & { store: Datastore; catalog: Catalog };

export interface BackupOptions {
  pool: WorkerPool;
  guestsDir: string;
  storages: StorageMap;
  /** disks outside the storages that may be read (config `allowDiskPaths`; guests/disk-paths.ts) */
  allowDiskPaths?: readonly string[];
  guestId: string;
  node: string;
  zstdLevel: number;
  /** encrypt the version with this key (format/encrypted-blob.ts, sealed-manifest.ts) */
  encryption?: VersionKey;
  keep?: number;
  log: TaskLog;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
  lockWaitMs?: number;
  /** logged after the first line, e.g. `status = running` (the job layer knows it) */
  statusLine?: string;
  /**
   * After planning and the space check, before anything is written: the job stops the guest here, and
   * may answer with read plans (the disks' cold snapshots, by disk key); no answer: the disks are read.
   */
  beforeArchive?: (log: TaskLog, disks: ReadonlyArray<{ key: string; path: string }>) => Promise<ReadonlyMap<string, DiskReadPlan> | void>;
  /**
   * after every chunk and index is written, before the manifest and the publish: a throw discards the
   * version. A job that starts the guest again here has its downtime in the manifest.
   */
  /** ignore bases, read everything (backup --full, a job's fullEvery) */
  full?: boolean;
  /** days after a chain's last full read when a base is no longer used (default 7; changed-read.ts) */
  fullEvery?: number;
  beforePublish?: (log: TaskLog) => Promise<void>;
  /** after the version is published and rotated, before the last line (`reads`: how each disk was read) */
  afterArchive?: (manifest: Manifest, versionDir: string, log: TaskLog, reads: readonly DiskReadReport[]) => Promise<void>;
  /** asked when the manifest is written: how long the job held the guest off (undefined: not known yet, or not stopped) */
  downtime?: () => Downtime | undefined;
}

export interface BackupResult {
  manifest: Manifest;
  pruned: number[];
  seconds: number;
  /** per disk: bytes read, bytes taken from a base, the next base's record (changed-read.ts) */
  reads: DiskReadReport[];
  /** bytes over the network, for a version pushed to another node */
  wire?: { sentBytes: number; receivedBytes: number };
}

interface PlannedDisk extends BackupDisk {
  path: string;
  /** what is read: the disk, or its cold snapshot (a read plan) */
  readPath: string;
  info: ImageInfo;
}

export async function backupGuest(req: BackupRequest): Promise<BackupResult> {
  const started = new Date();
  const vlog = createTaskLog((line) => logAt(req.log, line.level, line.message));
  vlog.info(`Starting Backup of VM ${req.guestId} (qemu)`);
  if (req.statusLine) vlog.info(req.statusLine);
  const target = 'target' in req ? req.target : new LocalTarget(req.store, req.catalog);
  let held: HeldTarget | undefined;
  let writer: VersionWriter | undefined;
  const keyed = req.encryption && req.pool.withKey(req.encryption);
  const codec: ChunkCodec = keyed ?? req.pool;
  try {
    held = await target.hold(req.guestId, req.lockWaitMs ?? 0, req.keep);
    const plan = await planBackup(req, vlog);
    await held.checkSpace(
      plan.disks.map((d) => ({ path: d.path, ...d.info })),
      codec,
      vlog,
    );
    const readPlans = (await req.beforeArchive?.(vlog, plan.disks)) || undefined;
    await readFrom(plan.disks, readPlans, req.guestId);
    writer = await openVersion(held, plan.disks, vlog);
    vlog.info(`creating archive ${writer.where}`);
    if (req.keep) vlog.info(`keep old backups: ${req.keep}`);
    const reads: DiskReadReport[] = [];
    const written = await writeVersion({ ...req, codec }, target, plan, writer, started, vlog, { plans: readPlans, reads });
    await req.beforePublish?.(vlog);
    const manifest = sealed(req, withDowntime(req, written, vlog));
    const wire = logWire(vlog, writer, manifest);
    const { pruned, dir } = await writer.publish(manifest, renderLog(vlog), vlog);
    const version = writer;
    writer = undefined;
    await req.afterArchive?.(manifest, dir ?? version.where, vlog, reads);
    const seconds = (Date.now() - started.getTime()) / 1000;
    vlog.info(`Finished Backup of VM ${req.guestId} (${formatDuration(seconds)})`);
    await version.finalLog?.(renderLog(vlog));
    return { manifest, pruned, seconds, reads, wire };
  } catch (err) {
    vlog.error(`Backup of VM ${req.guestId} failed - ${describeError(err)}`);
    await writer?.discard().catch(() => undefined);
    throw err;
  } finally {
    keyed?.release();
    await held?.release();
  }
}

/** The manifest as written: sealed and authenticated for an encrypted version (format/sealed-manifest.ts). */
function sealed(req: BackupRequest, manifest: Manifest): Manifest {
  return req.encryption ? sealManifest(manifest, req.encryption) : manifest;
}

async function openVersion(held: HeldTarget, disks: PlannedDisk[], vlog: TaskLog): Promise<VersionWriter> {
  return held.open(
    disks.reduce((sum, d) => sum + d.info.allocated, 0),
    vlog,
  );
}

/** Bytes on the wire of a pushed version, logged next to its logical bytes (before the publish: the log goes with it). */
function logWire(vlog: TaskLog, writer: VersionWriter, manifest: Manifest): BackupResult['wire'] {
  const wire = writer.wire?.();
  if (!wire) return undefined;
  const logical = manifest.disks.reduce((sum, d) => sum + d.size, 0);
  vlog.info(
    `on the wire: ${formatBytes(wire.sentBytes)} sent, ${formatBytes(wire.receivedBytes)} received, for ${formatBytes(logical)} of disks (${percent(wire.sentBytes, logical)}%)`,
  );
  return wire;
}

async function planBackup(
  req: BackupRequest,
  vlog: TaskLog,
): Promise<{ configPath: string; configText: string; name: string; disks: PlannedDisk[]; excluded: Manifest['excluded'] }> {
  const { path: configPath, config } = await readGuestConfig(req.guestsDir, req.guestId);
  for (const warning of config.warnings) vlog.warn(warning); // unknown keys and sections, over-long lines
  const name = guestName(config);
  vlog.info('backup mode: stop');
  if (req.encryption) vlog.info(`encryption: AES-256-GCM with key ${req.encryption.fingerprint}`);
  vlog.info(`VM Name: ${name}`);
  const { included, excluded } = selectBackupDisks(config);
  const disks: PlannedDisk[] = [];
  for (const disk of included) {
    const path = await resolveBackupDisk(disk, req.guestId, req); // the path rule: refused before anything is written
    const info = await imageInfo(path, `disk '${disk.key}' of guest ${req.guestId}`);
    vlog.info(`include disk '${disk.key}' '${disk.volume}' ${formatBytes(info.size, 0)}`);
    disks.push({ ...disk, path, readPath: path, info });
  }
  for (const ex of excluded) vlog.info(`exclude disk '${ex.key}' '${ex.volume}' (${ex.reason})`);
  if (disks.length === 0) vlog.warn(`guest ${req.guestId} has no disk to back up; saving its configuration only`);
  return {
    configPath,
    configText: archivedConfigText(config),
    name,
    disks,
    excluded: excluded.map((e) => ({ key: e.key, volume: e.volume, reason: e.reason })),
  };
}

/**
 * Points each disk at what is read (its cold snapshot, where the job made one) and takes its size
 * again now that it is frozen (the guest is off, or the snapshot made): a disk file may have grown
 * since planning, while the guest still ran (a qcow2 allocating clusters, a resize).
 */
async function readFrom(disks: PlannedDisk[], plans: ReadonlyMap<string, DiskReadPlan> | undefined, guestId: string): Promise<void> {
  for (const disk of disks) {
    disk.readPath = plans?.get(disk.key)?.readPath ?? disk.path;
    disk.info = await imageInfo(disk.readPath, `disk '${disk.key}' of guest ${guestId}`);
  }
}

async function writeVersion(
  req: BackupRequest & { codec: ChunkCodec },
  target: BackupTarget,
  plan: Awaited<ReturnType<typeof planBackup>>,
  writer: VersionWriter,
  started: Date,
  vlog: TaskLog,
  read: { plans?: ReadonlyMap<string, DiskReadPlan>; reads: DiskReadReport[] },
): Promise<Manifest> {
  vlog.info(`now save file '${plan.configPath}'`);
  await writer.writeFile(VERSION_CONFIG_FILE, req.encryption ? sealedConfigNote(req.encryption.fingerprint) : plan.configText);
  const local = target instanceof LocalTarget ? target.store : undefined;
  const version = writer.version;
  const ctx = {
    chunks: writer.chunks,
    pool: req.codec,
    io: new PQueue({ concurrency: 6 }),
    buffers: new BufferPool(),
    blobBuffers: blobBufferPool(),
    writeSlots: new Window(8),
    zstdLevel: req.zstdLevel,
    seen: new Map<string, Promise<void>>(),
    reused: new Set<string>(),
    signal: req.signal,
    beforeWrite: writer.beforeWrite,
  };
  const planned = [];
  for (const disk of plan.disks)
    planned.push({
      disk,
      spec: local && (await planDiskRead({ ...req, store: local, log: vlog, keyFingerprint: req.encryption?.fingerprint }, disk, read.plans?.get(disk.key))),
    });
  const total = plan.disks.reduce((s, d) => s + d.info.size, 0);
  const meter = new ProgressMeter('backup', total, req.onProgress);
  const disks: ManifestDisk[] = [];
  const written: WrittenDisk[] = [];
  const sum = newCounters();
  for (const { disk, spec } of planned) {
    vlog.info(`now save file '${disk.path}'${disk.readPath === disk.path ? '' : ` from its cold snapshot '${disk.readPath}'`}`);
    meter.item = disk.key;
    const result = await backupDisk(disk.readPath, disk.info.size, { ...ctx, onChunk: (c) => meter.update(c) }, spec?.fromBase);
    meter.completeItem(result);
    addCounters(sum, result);
    written.push({ path: disk.readPath, size: disk.info.size, digests: result.digests });
    disks.push(await writeIndex(writer, disk, result));
    logDisk(vlog, disk, result);
    logChangedSinceBase(vlog, disk.key, spec, result);
    read.reads.push(
      diskReadReport({ datastoreId: target.datastoreId, guestId: req.guestId, version }, disks.at(-1) as ManifestDisk, disk.readPath, spec, result),
    );
  }
  await writer.chunks.syncDirs();
  await writer.checkpoint?.('backup:stored');
  await confirmReused(written, ctx, vlog);
  const seconds = (Date.now() - started.getTime()) / 1000;
  logTotals(vlog, total, sum, seconds);
  return {
    format: DATASTORE_FORMAT,
    guestId: req.guestId,
    guestName: plan.name,
    version,
    time: started.toISOString(),
    node: req.node,
    config: plan.configText,
    disks,
    excluded: plan.excluded,
    storedBytes: sum.storedBytes,
    newBytes: sum.newBytes,
    durationSeconds: seconds,
  };
}

/** Made last, after beforePublish: the downtime of a guest the job started again there is known by then. */
function withDowntime(req: BackupRequest, written: Manifest, vlog: TaskLog): Manifest {
  const downtimeMs = recordDowntime(req, vlog);
  return downtimeMs === undefined ? written : { ...written, downtimeMs };
}

async function writeIndex(writer: VersionWriter, disk: PlannedDisk, result: BackupDiskResult): Promise<ManifestDisk> {
  const index = `${disk.key}${INDEX_SUFFIX}`;
  await writer.writeFile(index, encodeFixedIndex({ chunkSize: CHUNK_SIZE, size: disk.info.size, digests: result.digests }));
  return {
    key: disk.key,
    volume: disk.volume,
    storage: disk.storage,
    format: disk.format,
    size: disk.info.size,
    index,
    sha256: result.sha256,
    chunkSize: CHUNK_SIZE,
    chunkCount: result.digests.length,
    zeroChunks: result.zeroChunks,
    zeroBytes: result.zeroBytes,
  };
}

/** The job's downtime for the manifest, logged as `guest 101 was off for 00:00:14 (...)` when known. */
function recordDowntime(req: BackupRequest, vlog: TaskLog): number | undefined {
  const downtime = req.downtime?.();
  if (downtime === undefined) return undefined;
  vlog.info(formatDowntime(req.guestId, downtime));
  return downtimeMillis(downtime);
}

function addCounters(sum: DiskCounters, add: DiskCounters): void {
  for (const key of Object.keys(sum) as Array<keyof DiskCounters>) sum[key] += add[key];
}

function logDisk(vlog: TaskLog, disk: PlannedDisk, r: BackupDiskResult): void {
  vlog.info(
    `disk '${disk.key}': ${formatBytes(disk.info.size)}, zero ${formatBytes(r.zeroBytes)} (${percent(r.zeroBytes, disk.info.size)}%), ` +
      `already in store ${formatBytes(r.dedupBytes)} (${percent(r.dedupBytes, disk.info.size)}%), new ${formatBytes(r.newBytes)} stored as ${formatBytes(r.storedBytes)}`,
  );
}

function logTotals(vlog: TaskLog, total: number, sum: DiskCounters, seconds: number): void {
  vlog.info(`backup is sparse: ${formatBytes(sum.zeroBytes)} (${percent(sum.zeroBytes, total)}%) total zero data`);
  vlog.info(`backup was deduplicated: ${formatBytes(sum.dedupBytes)} (${percent(sum.dedupBytes, total)}%) already in the store`);
  vlog.info(`transferred ${formatBytes(total)} in ${Math.round(seconds)} seconds (${formatRate(total, seconds)})`);
  vlog.info(`archive size: ${formatBytes(sum.storedBytes)} new in the store (${sum.newChunks} chunks)`);
}

function renderLog(vlog: { lines: LogLine[] }): string {
  return vlog.lines.map(formatLogLine).join('\n') + '\n';
}
