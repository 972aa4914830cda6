/**
 * Cold snapshots of one guest's disks for one run (the job flow in guest-run.ts, `coldvault backup`):
 * every disk is snapshotted, or none is. A disk no provider accepts (ext4, NTFS, a block device ...)
 * means none: one log line says why, and the disks themselves are read (the guest stays off for the
 * read). A snapshot is tagged `run-<pid>-<boot id>` while its run owns it, so that a snapshot left by a
 * run that died is recognised (snapshot-leftovers.ts), also after a reboot.
 */
import { type ColdSnapshot, describeError, type SnapshotProvider, type SnapshotSource, type TaskLog } from '../core/index.js';
import { thisBoot } from '../datastore/index.js';
import type { StorageMap } from '../guests/index.js';
import { snapshotProviderFor, snapshotProviders } from '../guests/snapshots/index.js';
import type { DiskReadPlan, DiskReadReport } from '../pipeline/index.js';
import { keepAsBase, plansWithBases } from './snapshot-bases.js';

export type SnapshotMode = 'auto' | 'off';

/** The tag of this process's snapshots. */
export function runTag(): string {
  return `run-${process.pid}-${thisBoot ?? 'noboot'}`;
}

/** The process (and boot) a `run-` tag names; undefined for any other tag. */
export function parseRunTag(tag: string): { pid: number; boot?: string } | undefined {
  const m = /^run-(\d+)-(.+)$/.exec(tag);
  if (!m) return undefined;
  return { pid: Number(m[1]), boot: m[2] === 'noboot' ? undefined : m[2] };
}

/** The snapshots one run made of one guest's disks, and the providers that made them. */
export class GuestSnapshots {
  constructor(
    private readonly providers: readonly SnapshotProvider[],
    readonly snapshots: readonly ColdSnapshot[],
  ) {}

  /**
   * For the pipeline: read each disk's snapshot instead of the disk, and compare it with the disk's
   * base for `datastoreId` where one is kept (snapshot-bases.ts); without a datastore id, no bases.
   */
  readPlans(datastoreId?: string): Promise<ReadonlyMap<string, DiskReadPlan>> {
    return plansWithBases(this.providers, this.snapshots, datastoreId);
  }

  /**
   * What becomes of the run's snapshots once the backup is over. Published with `keep` (the
   * datastore and the pipeline's read reports): each becomes the disk's base for that datastore, the
   * old base going; else (failed, or not kept) it is removed, and the old base stays as it was. A
   * snapshot that cannot be removed is logged; a later run of another process removes it as a leftover.
   */
  async settleAfterRun(published: boolean, log: TaskLog, keep?: { datastoreId: string; reads: readonly DiskReadReport[] }): Promise<void> {
    for (const snapshot of this.snapshots) {
      const read = keep?.reads.find((r) => r.key === snapshot.key);
      if (published && keep && (await keepAsBase(this.providers, snapshot, keep.datastoreId, read, log))) continue;
      await removeSnapshot(this.providers, snapshot, log);
    }
  }
}

/**
 * Snapshots every disk of the guest (which must be off), or none: when a disk is refused or a create
 * fails, the snapshots made are removed and one line says why; undefined then.
 */
export async function snapshotGuestDisks(
  guestId: string,
  disks: ReadonlyArray<{ key: string; path: string }>,
  storages: StorageMap,
  log: TaskLog,
  /** wraps the making of the snapshots (not the refusal probes): the downtime's snapshot phase */
  timed: <T>(work: () => Promise<T>) => Promise<T> = (work) => work(),
): Promise<GuestSnapshots | undefined> {
  const providers = snapshotProviders({ storageDirs: Object.values(storages) });
  const sources: SnapshotSource[] = disks.map((d) => ({ guestId, key: d.key, path: d.path }));
  const chosen: Array<[SnapshotSource, SnapshotProvider]> = [];
  for (const source of sources) {
    const choice = await snapshotProviderFor(providers, source);
    if (choice.refusal !== undefined) {
      log.info(
        `no cold snapshot of guest ${guestId}: disk '${source.key}' ('${source.path}'): ${choice.refusal}; the guest stays off while its disks are read`,
      );
      return undefined;
    }
    chosen.push([source, choice.provider]);
  }
  return timed(() => createAll(guestId, chosen, providers, log));
}

async function createAll(
  guestId: string,
  chosen: Array<[SnapshotSource, SnapshotProvider]>,
  providers: readonly SnapshotProvider[],
  log: TaskLog,
): Promise<GuestSnapshots | undefined> {
  const made: ColdSnapshot[] = [];
  const tag = runTag();
  try {
    for (const [source, provider] of chosen) made.push(await provider.create(source, tag));
  } catch (err) {
    for (const snapshot of made) await removeSnapshot(providers, snapshot, log);
    log.warn(`no cold snapshot of guest ${guestId}: ${describeError(err)}; none is kept, the guest stays off while its disks are read`);
    return undefined;
  }
  for (const s of made) log.info(`cold snapshot of disk '${s.key}' (${s.provider}): '${s.snapshotPath}'`);
  return new GuestSnapshots(providers, made);
}

/** Removes one snapshot with the provider that made it; a failure is logged, not thrown. */
export async function removeSnapshot(providers: readonly SnapshotProvider[], snapshot: ColdSnapshot, log: TaskLog): Promise<boolean> {
  try {
    const provider = providers.find((p) => p.name === snapshot.provider);
    if (!provider) throw new Error(`no snapshot provider '${snapshot.provider}'`);
    await provider.remove(snapshot);
    return true;
  } catch (err) {
    log.error(`removing the cold snapshot '${snapshot.snapshotPath}' of guest ${snapshot.guestId} failed - ${describeError(err)}`);
    return false;
  }
}
