/**
 * Cleanup after a restore that was killed. A restore writes the new config to a temp name first
 * (`<id>.conf.cvtmp-<pid>-*`), then renames its disks into place, then renames the config: so a
 * leftover temp config of a dead process names exactly the volumes that restore may have put in
 * place. They are removed (unless the guest's real config uses them), and so are the temp disks of
 * dead restores in the guest's image folders, before the next restore to the same ID. Only what a
 * restore makes is ever removed: a `vm-<id>-disk-N` file of a storage volume whose folder really lies
 * inside that storage (a leftover config naming `/etc/passwd`, or an `images/<id>` that is a symlink
 * out of the storage, removes nothing).
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { TaskLog } from '../core/index.js';
import { processAlive, TEMP_MARK } from '../datastore/index.js';
import { guestConfigPath, parseGuestConfig, resolveVolumePath, selectBackupDisks, type StorageMap } from '../guests/index.js';

function tempOwner(name: string): number {
  return Number(name.slice(name.indexOf(TEMP_MARK) + TEMP_MARK.length).split('-')[0]);
}

function volumePaths(text: string, what: string, storages: StorageMap): string[] {
  try {
    const config = parseGuestConfig(text, what);
    return selectBackupDisks(config).included.flatMap((d) => {
      try {
        return [resolveVolumePath(d.volume, storages)];
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

/** Whether `path` is a disk a restore to `newId` makes: `<storage>/images/<newId>/vm-<newId>-disk-N.*`, really inside the storage. */
function madeByRestore(path: string, newId: string, storages: StorageMap): boolean {
  if (!new RegExp(`^vm-${newId}-disk-\\d+\\.(raw|qcow2)$`).test(basename(path))) return false;
  return Object.values(storages).some((dir) => dirname(path) === join(dir, 'images', newId) && insideReally(dirname(path), dir));
}

/** Whether folder `dir` resolves (realpath) inside the real folder `root`. */
function insideReally(dir: string, root: string): boolean {
  try {
    const real = realpathSync(dir);
    const realRoot = realpathSync(root);
    return real === realRoot || real.startsWith(`${realRoot}/`);
  } catch {
    return false;
  }
}

export async function recoverInterruptedRestore(guestsDir: string, newId: string, storages: StorageMap, log: TaskLog): Promise<void> {
  const configPath = guestConfigPath(guestsDir, newId);
  const prefix = `${newId}.conf${TEMP_MARK}`;
  const leftovers = existsSync(guestsDir) ? readdirSync(guestsDir).filter((n) => n.startsWith(prefix) && !processAlive(tempOwner(n))) : [];
  for (const name of leftovers) {
    const pending = join(guestsDir, name);
    const inUse = existsSync(configPath) ? new Set(volumePaths(readFileSync(configPath, 'utf8'), configPath, storages)) : new Set<string>();
    for (const path of volumePaths(readFileSync(pending, 'utf8'), pending, storages)) {
      if (inUse.has(path) || !madeByRestore(path, newId, storages)) continue;
      if (existsSync(path)) {
        await unlink(path);
        log.warn(`removed '${path}', left by an interrupted restore to guest ${newId}`);
      }
    }
    await unlink(pending);
  }
  for (const dir of Object.values(storages)) {
    if (insideReally(join(dir, 'images', newId), dir)) await removeDeadTemps(join(dir, 'images', newId), log);
  }
}

/** Temp disks of dead restore processes in a guest's image folder. */
async function removeDeadTemps(dir: string, log: TaskLog): Promise<void> {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir).filter((n) => n.includes(TEMP_MARK) && !processAlive(tempOwner(n)))) {
    await unlink(join(dir, name)).catch(() => undefined);
    log.warn(`removed '${join(dir, name)}', left by an interrupted restore`);
  }
}
