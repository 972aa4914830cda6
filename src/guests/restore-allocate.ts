/**
 * Volume names for a restore, as qmrestore allocates them on a "dir" storage: per disk, in sorted key
 * order, `<storage>:<newId>/vm-<newId>-disk-<N>.<format>` with N the lowest number not yet used by a
 * file in `<dir>/images/<newId>/` (pve-storage find_free_diskname: `vm-` and `base-` names count) nor
 * by this call. Files listed in `reusable` (volume IDs or paths of the config being replaced under
 * --force) count as free. Formats other than raw, qcow2 and vmdk fall back to the storage default, raw.
 */
import { posix } from 'node:path';
import { ColdvaultError, isGuestId } from '../core/index.js';
import { storageDir, type StorageMap } from './volumes.js';

const DIR_FORMATS = new Set(['raw', 'qcow2', 'vmdk']);

export interface RestoreAllocationArgs {
  newId: string;
  disks: Array<{ key: string; format: string; storage: string }>;
  storages: StorageMap;
  existingFiles: (dir: string) => string[];
  reusable?: Set<string>;
}

export function allocateRestoreVolumes(args: RestoreAllocationArgs): Map<string, { volume: string; path: string }> {
  const { newId, storages } = args;
  if (!isGuestId(newId)) throw new ColdvaultError('USAGE', `invalid guest id '${newId}' to restore to`);
  const used = new Map<string, Set<number>>();
  const result = new Map<string, { volume: string; path: string }>();
  const disks = [...args.disks].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const disk of disks) {
    const format = DIR_FORMATS.has(disk.format) ? disk.format : 'raw';
    const doing = `allocating a volume for disk ${disk.key} of guest ${newId}`;
    const dir = posix.join(storageDir(storages, disk.storage, doing), 'images', newId);
    const numbers = used.get(dir) ?? usedNumbers(args, disk.storage, dir);
    used.set(dir, numbers);
    const n = lowestFree(numbers);
    numbers.add(n);
    const file = `vm-${newId}-disk-${n}.${format}`;
    result.set(disk.key, { volume: `${disk.storage}:${newId}/${file}`, path: posix.join(dir, file) });
  }
  return result;
}

function usedNumbers(args: RestoreAllocationArgs, storage: string, dir: string): Set<number> {
  const pattern = new RegExp(`^(?:vm|base)-${args.newId}-disk-(\\d+)(?:\\..*)?$`);
  const numbers = new Set<number>();
  for (const file of args.existingFiles(dir)) {
    const n = pattern.exec(file)?.[1];
    if (n === undefined || isReusable(args.reusable, `${storage}:${args.newId}/${file}`, posix.join(dir, file))) continue;
    numbers.add(Number(n));
  }
  return numbers;
}

function isReusable(reusable: Set<string> | undefined, volume: string, path: string): boolean {
  return reusable !== undefined && (reusable.has(volume) || reusable.has(path));
}

function lowestFree(numbers: Set<number>): number {
  let n = 0;
  while (numbers.has(n)) n++;
  return n;
}
