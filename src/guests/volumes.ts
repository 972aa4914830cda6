/**
 * Volume IDs (`storage:volname`) and absolute paths, resolved against "dir" storages
 * (pve-storage Plugin.pm: parse_volume_id, parse_volname, filesystem_path).
 */
import { posix } from 'node:path';
import { ColdvaultError } from '../core/index.js';

/** Storage id -> the directory of a Proxmox "dir" storage. */
export type StorageMap = Record<string, string>;

const VOLUME_ID = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$/i;

/** `local:101/x.raw` -> { storage: 'local', volname: '101/x.raw' }; anything else (a path) has storage null. */
export function parseVolume(volume: string): { storage: string | null; volname: string } {
  const match = VOLUME_ID.exec(volume);
  if (!match || volume.startsWith('/')) return { storage: null, volname: volume };
  return { storage: match[1] ?? '', volname: match[2] ?? '' };
}

/**
 * The file behind a volume: an absolute path is itself; `<vmid>/<file>` is `<dir>/images/<vmid>/<file>`
 * (a linked clone `<base vmid>/<base file>/<vmid>/<file>` the same); `iso/<file>` is
 * `<dir>/template/iso/<file>`; a volname without '/' (block-storage style) is `<dir>/<volname>`.
 */
export function resolveVolumePath(volume: string, storages: StorageMap): string {
  const { storage, volname } = parseVolume(volume);
  if (storage === null) {
    if (posix.isAbsolute(volname)) return volname;
    throw new ColdvaultError('DISK_UNSUPPORTED', `resolving volume '${volume}' failed: neither a storage volume nor an absolute path`);
  }
  const dir = storageDir(storages, storage, `resolving volume '${volume}'`);
  return posix.join(dir, relativePath(volume, volname));
}

/** The directory of a storage; STORAGE_UNKNOWN (naming `doing` and the known ids) when it is not configured. */
export function storageDir(storages: StorageMap, storage: string, doing: string): string {
  const dir = Object.hasOwn(storages, storage) ? storages[storage] : undefined;
  if (dir !== undefined) return dir;
  const known = Object.keys(storages).sort().join(', ') || 'none';
  throw new ColdvaultError('STORAGE_UNKNOWN', `${doing} failed: unknown storage '${storage}' (known: ${known})`);
}

function relativePath(volume: string, volname: string): string {
  if (volname.split('/').some((seg) => seg === '..' || seg === '.' || seg === '')) {
    throw new ColdvaultError('DISK_UNSUPPORTED', `resolving volume '${volume}' failed: invalid volume name '${volname}'`);
  }
  if (/^\d+\/[^/]+$/.test(volname)) return `images/${volname}`;
  const linkedClone = /^\d+\/[^/]+\/(\d+\/[^/]+)$/.exec(volname);
  if (linkedClone) return `images/${linkedClone[1] ?? ''}`;
  if (/^iso\/[^/]+$/.test(volname)) return `template/${volname}`;
  if (!volname.includes('/')) return volname;
  throw new ColdvaultError('DISK_UNSUPPORTED', `resolving volume '${volume}' failed: unsupported volume name '${volname}'`);
}
