/**
 * Restore of a guest version under a new ID, as qmrestore does it: new volumes `vm-<new>-disk-<N>`
 * on the chosen storage, the config rewritten to them (new MACs and smbios uuid with `unique`).
 * Disks are written under temp names and verified chunk by chunk; only when every disk is complete
 * are they renamed to their volume names and the config written as `<new>.conf`. A failure leaves
 * neither config nor partial disk. The version is read from a version source (version-source.ts): a
 * local datastore (`store`), or another node's (`source`: its node holds the read lease, see that file).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import PQueue from 'p-queue';
import { ColdvaultError, describeError, formatBytes, formatDuration, formatRate, type ProgressListener, type TaskLog } from '../core/index.js';
import { ensureDir, filesystemSpace, fsyncDir, tempNameFor, TEMP_MARK, writeFileDurable, type LockDir } from '../datastore/index.js';
import type { FixedIndex, Manifest, VersionKey } from '../format/index.js';
import {
  allocateRestoreVolumes,
  checkRestoreTargets,
  guestConfigPath,
  parseGuestConfig,
  rewriteConfigForRestore,
  selectBackupDisks,
  type StorageMap,
} from '../guests/index.js';
import { checkIndexDigest, restoreDisk } from './restore-disk.js';
import { ProgressMeter } from './progress-meter.js';
import { recoverInterruptedRestore } from './restore-recovery.js';
import { ChunkReader, readQueue, readWindow } from './chunk-reader.js';
import { sourceOf, type SourceRef, type VersionSource } from './version-source.js';
import type { ChunkCodec, WorkerPool } from './worker-pool.js';
import { openVersion } from './version-keys.js';

/** What to restore from: `store` (a local datastore) or `source` (any version source, e.g. another node's datastore). */
export type RestoreRequest = RestoreOptions & SourceRef;

export interface RestoreOptions {
  pool: WorkerPool;
  guestId: string;
  version: number;
  newId: string;
  /** the key of an encrypted version (one without is refused, naming its key) */
  key?: VersionKey;
  guestsDir: string;
  storages: StorageMap;
  targetStorage?: string;
  unique?: boolean;
  force?: boolean;
  log: TaskLog;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
  /** where the lock against two restores to one new ID lives; default the datastore's (a read-only
   * datastore, e.g. an external disk mounted read-only, needs another, e.g. the state dir's; so does a
   * remote one, which has none) */
  locks?: LockDir;
  /** config keys left out of the restored config, and why (for the WARN line when the config had them) */
  dropKeys?: { keys: readonly string[]; why: string };
}

interface DiskPlan {
  key: string;
  size: number;
  zeroBytes: number;
  index: FixedIndex;
  volume: string;
  path: string;
  temp: string;
  /** renamed to its volume name (a failure after that removes it there) */
  published?: boolean;
}

export async function restoreGuest(req: RestoreRequest): Promise<{ configPath: string; volumes: Map<string, string> }> {
  const source = sourceOf(req);
  req.log.info(`restore qemu-server image ${req.guestId} version ${req.version} using ID ${req.newId} from ${source.describe}`);
  // The version cannot be pruned while it is read (datastore/version-use.ts; a remote source's node holds the lease).
  const lease = await source.lease(req.guestId, req.version, `restore of guest ${req.guestId} version ${req.version} as ${req.newId}`);
  try {
    return await restoreLeased(req, source);
  } finally {
    await lease.release();
  }
}

async function restoreLeased(req: RestoreOptions, source: VersionSource): Promise<{ configPath: string; volumes: Map<string, string> }> {
  const started = Date.now();
  const opened = openVersion(req.pool, await source.readManifest(req.guestId, req.version), req.key, req);
  try {
    return await restoreOpened(req, source, opened.manifest, opened.codec, started);
  } finally {
    opened.release();
  }
}

async function restoreOpened(
  req: RestoreOptions,
  source: VersionSource,
  manifest: Manifest,
  codec: ChunkCodec,
  started: number,
): Promise<{ configPath: string; volumes: Map<string, string> }> {
  if (manifest.encryption) req.log.info(`version is encrypted with key ${manifest.encryption.fingerprint}: manifest authenticated`);
  await source.checkpoint('restore:manifest');
  const configPath = guestConfigPath(req.guestsDir, req.newId);
  const lock = await restoreLocks(req, source).acquire(`restore-${req.newId}`, `restore to guest ${req.newId}`);
  const disks: DiskPlan[] = [];
  let pendingConfig: string | undefined;
  try {
    await recoverInterruptedRestore(req.guestsDir, req.newId, req.storages, req.log);
    refuseTakenId(req, configPath);
    disks.push(...(await planDisks(req, source, manifest, configPath)));
    await checkRestoreSpace(disks, req.log);
    const meter = new ProgressMeter(
      'restore',
      disks.reduce((s, d) => s + d.size, 0),
      req.onProgress,
    );
    const io = new PQueue({ concurrency: 4 });
    const reader = new ChunkReader(source.chunks, codec, readQueue(source.chunks, io));
    for (const disk of disks) {
      await source.checkpoint('restore:disk');
      req.log.info(`restore disk '${disk.key}' to '${disk.volume}' (${formatBytes(disk.size)})`);
      await ensureDir(dirname(disk.path));
      meter.item = disk.key;
      await restoreDisk(disk.index, disk.temp, {
        reader,
        window: readWindow(source.chunks, codec),
        io,
        signal: req.signal,
        onChunk: (c) => meter.update({ ...c, dedupBytes: 0, storedBytes: c.writtenBytes }),
      });
      meter.completeItem({ readBytes: disk.size, zeroBytes: disk.zeroBytes, dedupBytes: 0, storedBytes: disk.size - disk.zeroBytes });
    }
    const volumes = new Map(disks.map((d) => [d.key, d.volume]));
    const config = rewriteConfigForRestore(manifest.config, {
      volumes,
      unique: req.unique ?? false,
      dropKeys: req.dropKeys?.keys,
      onDropped: (keys) => req.log.warn(`left ${keys.map((k) => `'${k}:'`).join(', ')} out of the restored configuration: ${req.dropKeys?.why ?? ''}`),
    });
    req.log.info(`restore configuration to '${configPath}'`);
    await ensureDir(dirname(configPath));
    pendingConfig = tempNameFor(configPath);
    await writeFileDurable(pendingConfig, Buffer.from(config));
    await publishDisks(disks);
    await rename(pendingConfig, configPath);
    pendingConfig = undefined;
    await fsyncDir(dirname(configPath));
    logTotals(req.log, disks, started);
    req.log.info('restore successful');
    return { configPath, volumes };
  } catch (err) {
    await Promise.all(disks.map((d) => unlink(d.published ? d.path : d.temp).catch(() => undefined)));
    if (pendingConfig) await unlink(pendingConfig).catch(() => undefined);
    req.log.error(`restore failed - ${describeError(err)}`);
    throw err;
  } finally {
    await lock.release();
  }
}

function restoreLocks(req: RestoreOptions, source: VersionSource): LockDir {
  const locks = req.locks ?? source.locks;
  if (!locks) throw new ColdvaultError('USAGE', `restoring from ${source.describe} needs a lock folder on this node (RestoreRequest.locks)`);
  return locks;
}

function refuseTakenId(req: RestoreOptions, configPath: string): void {
  if (!existsSync(configPath)) return;
  if (!req.force) {
    throw new ColdvaultError(
      'GUEST_ID_TAKEN',
      `guest ID ${req.newId} is already in use ('${configPath}' exists); choose another --new-id or use --force to overwrite it`,
    );
  }
  req.log.warn(`guest ${req.newId} exists; its configuration will be replaced (--force)`);
}

async function planDisks(req: RestoreOptions, source: VersionSource, manifest: Manifest, configPath: string): Promise<DiskPlan[]> {
  const wanted = manifest.disks.map((d) => ({ key: d.key, format: d.format, storage: targetStorageFor(req, d.key, d.storage, d.volume) }));
  const allocated = allocateRestoreVolumes({
    newId: req.newId,
    disks: wanted,
    storages: req.storages,
    existingFiles: (dir) => (existsSync(dir) ? readdirSync(dir).filter((n) => !n.includes(TEMP_MARK)) : []),
    reusable: req.force ? volumesOf(configPath) : undefined,
  });
  await checkRestoreTargets(req.newId, allocated, req.storages);
  const plans: DiskPlan[] = [];
  for (const disk of manifest.disks) {
    const index = await source.readIndex(req.guestId, req.version, disk.index);
    checkIndexDigest(index, disk, `disk '${disk.key}' of guest ${req.guestId} version ${req.version}`);
    const target = allocated.get(disk.key);
    if (!target) throw new Error(`no volume allocated for disk '${disk.key}'`);
    plans.push({ key: disk.key, size: disk.size, zeroBytes: disk.zeroBytes, index, volume: target.volume, path: target.path, temp: tempNameFor(target.path) });
  }
  return plans;
}

function targetStorageFor(req: RestoreOptions, key: string, storage: string | null, volume: string): string {
  const chosen = req.targetStorage ?? storage;
  if (!chosen) {
    throw new ColdvaultError(
      'USAGE',
      `disk '${key}' of guest ${req.guestId} was an absolute path ('${volume}'); choose where to restore it with --target-storage <id>`,
    );
  }
  if (!(chosen in req.storages)) {
    throw new ColdvaultError(
      'STORAGE_UNKNOWN',
      `storage '${chosen}' for disk '${key}' is not configured (known: ${Object.keys(req.storages).join(', ') || 'none'}); pass --storage ${chosen}=<dir>`,
    );
  }
  return chosen;
}

function volumesOf(configPath: string): Set<string> {
  try {
    const config = parseGuestConfig(readFileSync(configPath, 'utf8'), `'${configPath}'`);
    return new Set(selectBackupDisks(config).included.map((d) => d.volume));
  } catch {
    return new Set();
  }
}

async function checkRestoreSpace(disks: DiskPlan[], log: TaskLog): Promise<void> {
  const byDir = new Map<string, number>();
  for (const d of disks) {
    const dir = nearestExisting(dirname(d.path));
    byDir.set(dir, (byDir.get(dir) ?? 0) + d.size - d.zeroBytes);
  }
  for (const [dir, needed] of byDir) {
    const { free } = await filesystemSpace(dir);
    log.info(`space needed: ${formatBytes(needed)}, available: ${formatBytes(free)} (in '${dir}')`);
    if (free < needed) {
      throw new ColdvaultError('NO_SPACE', `not enough space in '${dir}' to restore: needs ${formatBytes(needed)}, available ${formatBytes(free)}`);
    }
  }
}

function nearestExisting(dir: string): string {
  let d = dir;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return d;
}

async function publishDisks(disks: DiskPlan[]): Promise<void> {
  for (const d of disks) {
    await rename(d.temp, d.path);
    d.published = true;
  }
  for (const dir of new Set(disks.map((d) => dirname(d.path)))) await fsyncDir(dir);
}

function logTotals(log: TaskLog, disks: DiskPlan[], started: number): void {
  const total = disks.reduce((s, d) => s + d.size, 0);
  const seconds = (Date.now() - started) / 1000;
  log.info(`restored ${formatBytes(total)} in ${formatDuration(seconds)} (${formatRate(total, seconds)})`);
}
