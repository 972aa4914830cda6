/**
 * Leftover cold snapshots: a run that died after its snapshot (kill -9, a crash, a power cut) leaves
 * `run-<pid>-<boot id>` snapshots behind (its guest already runs again: the restart journal covers
 * the seconds between shutdown and start). Every job run, and `coldvault serve` at start, removes the
 * `run-` snapshots of every guest whose process is gone (pid dead, or another boot) and logs it.
 * Snapshots of live runs and bases (`base-*`) are left alone.
 */
import { type ColdSnapshot, describeError, type SnapshotSource, type TaskLog } from '../core/index.js';
import { holderAlive, thisHost } from '../datastore/index.js';
import { listGuestIds, readGuestConfig, resolveBackupDisk, selectBackupDisks, type StorageMap } from '../guests/index.js';
import { snapshotProviders } from '../guests/snapshots/index.js';
import { parseRunTag, removeSnapshot } from './cold-snapshots.js';

export interface LeftoverScope {
  guestsDir: string;
  storages: StorageMap;
  allowDiskPaths?: readonly string[];
}

/** Removes the snapshots of dead runs of every guest in the guests folder; returns how many. */
export async function removeLeftoverSnapshots(scope: LeftoverScope, log: TaskLog): Promise<number> {
  const providers = snapshotProviders({ storageDirs: Object.values(scope.storages) });
  let removed = 0;
  for (const guestId of await listGuestIds(scope.guestsDir).catch(() => [])) {
    try {
      const sources = await guestSources(scope, guestId);
      for (const provider of providers) {
        for (const snapshot of (await provider.list(guestId, sources)).filter(isLeftover)) {
          log.warn(`removing the cold snapshot '${snapshot.snapshotPath}' of guest ${guestId}: ${whose(snapshot)} did not finish`);
          if (await removeSnapshot(providers, snapshot, log)) removed++;
        }
      }
    } catch (err) {
      log.warn(`looking for leftover cold snapshots of guest ${guestId} failed - ${describeError(err)}`);
    }
  }
  return removed;
}

function isLeftover(snapshot: ColdSnapshot): boolean {
  const run = parseRunTag(snapshot.tag);
  return run !== undefined && !holderAlive({ pid: run.pid, host: thisHost, boot: run.boot });
}

function whose(snapshot: ColdSnapshot): string {
  const run = parseRunTag(snapshot.tag);
  return `the run that made it (pid ${run?.pid ?? '?'}${run?.boot ? `, boot ${run.boot.slice(0, 8)}` : ''}, ${new Date(snapshot.created).toISOString()})`;
}

/**
 * The guest's disks that may be read (the path rule); a disk that cannot be resolved is skipped, and
 * so is a guest whose config cannot be read (its own job says why, not every job's log).
 */
async function guestSources(scope: LeftoverScope, guestId: string): Promise<SnapshotSource[]> {
  const config = (await readGuestConfig(scope.guestsDir, guestId).catch(() => undefined))?.config;
  if (!config) return [];
  const sources: SnapshotSource[] = [];
  for (const disk of selectBackupDisks(config).included) {
    const path = await resolveBackupDisk(disk, guestId, scope).catch(() => undefined);
    if (path !== undefined) sources.push({ guestId, key: disk.key, path });
  }
  return sources;
}
