/**
 * The plan of a restore, shared by the plain restore (restore.ts) and restore-on-the-fly
 * (live-restore/): the lock against two restores to one new ID, the refusal of a taken ID, the new
 * volumes allocated as qmrestore does (each disk's index read and checked against the manifest), and
 * the space check (each target folder must hold the disks' non-zero bytes).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ColdvaultError, formatBytes, type TaskLog } from '../core/index.js';
import { filesystemSpace, tempNameFor, TEMP_MARK, type LockDir } from '../datastore/index.js';
import type { FixedIndex, Manifest } from '../format/index.js';
import { allocateRestoreVolumes, checkRestoreTargets, parseGuestConfig, rewriteConfigForRestore, selectBackupDisks } from '../guests/index.js';
import { checkIndexDigest } from './restore-disk.js';
import type { RestoreOptions } from './restore.js';
import type { VersionSource } from './version-source.js';

export interface DiskPlan {
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

export function restoreLocks(req: RestoreOptions, source: VersionSource): LockDir {
  const locks = req.locks ?? source.locks;
  if (!locks) throw new ColdvaultError('USAGE', `restoring from ${source.describe} needs a lock folder on this node (RestoreRequest.locks)`);
  return locks;
}

export function refuseTakenId(req: RestoreOptions, configPath: string): void {
  if (!existsSync(configPath)) return;
  if (!req.force) {
    throw new ColdvaultError(
      'GUEST_ID_TAKEN',
      `guest ID ${req.newId} is already in use ('${configPath}' exists); choose another --new-id or use --force to overwrite it`,
    );
  }
  req.log.warn(`guest ${req.newId} exists; its configuration will be replaced (--force)`);
}

export async function planDisks(req: RestoreOptions, source: VersionSource, manifest: Manifest, configPath: string): Promise<DiskPlan[]> {
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

export async function checkRestoreSpace(disks: DiskPlan[], log: TaskLog): Promise<void> {
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

/** The archived config rewritten for the new ID: the new volumes, new MACs and smbios uuid with `unique`, the keys the caller may not restore left out (a WARN line names them). */
export function restoredConfig(req: RestoreOptions, manifest: Manifest, volumes: ReadonlyMap<string, string>): string {
  return rewriteConfigForRestore(manifest.config, {
    volumes: new Map(volumes),
    unique: req.unique ?? false,
    dropKeys: req.dropKeys?.keys,
    onDropped: (keys) => req.log.warn(`left ${keys.map((k) => `'${k}:'`).join(', ')} out of the restored configuration: ${req.dropKeys?.why ?? ''}`),
  });
}
