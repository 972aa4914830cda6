/**
 * Restore of a guest version under a new ID, as qmrestore does it: new volumes `vm-<new>-disk-<N>`
 * on the chosen storage, the config rewritten to them (new MACs and smbios uuid with `unique`).
 * Disks are written under temp names and verified chunk by chunk; only when every disk is complete
 * are they renamed to their volume names and the config written as `<new>.conf`. A failure leaves
 * neither config nor partial disk. The version is read from a version source (version-source.ts): a
 * local datastore (`store`), or another node's (`source`: its node holds the read lease, see that file).
 */
import { rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import PQueue from 'p-queue';
import { describeError, formatBytes, formatDuration, formatRate, type ProgressListener, type TaskLog } from '../core/index.js';
import { ensureDir, fsyncDir, tempNameFor, writeFileDurable, type LockDir } from '../datastore/index.js';
import type { Manifest, VersionKey } from '../format/index.js';
import { guestConfigPath, type StorageMap } from '../guests/index.js';
import { restoreDisk } from './restore-disk.js';
import { checkRestoreSpace, planDisks, refuseTakenId, restoredConfig, restoreLocks, type DiskPlan } from './restore-plan.js';
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
    const config = restoredConfig(req, manifest, volumes);
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
