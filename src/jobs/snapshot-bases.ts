/**
 * Bases of the changed-extent nightly in the run flow: before the read, each disk's base for this
 * datastore (tag `base-<datastore id>`) is named in the read plan; once the version is published, the
 * run's snapshot of each disk becomes that base, and the old base is gone.
 *
 * Crash safety (any doubt means read, pipeline/changed-read.ts): a base is used only with a good
 * record (`<base>.base.json`, base-record.ts) naming this very file (inode, mtime), datastore,
 * guest, disk and a published version. Keeping a base is: (1) remove the old base's record, (2) rename
 * the run's snapshot onto the base's name (replacing the old base in one step), (3) write the new
 * record durably. Cut after (1) or (2): the base has no record, or one naming another inode: the next
 * backup reads everything, with a line saying why, and keeps its own snapshot as the base. Never is a
 * base paired with a record of another file. The run's snapshot is renamed only after the publish, so
 * a failed backup leaves the old base (and its record) as they were.
 */
import { type ColdSnapshot, describeError, type SnapshotProvider, type TaskLog } from '../core/index.js';
import { type DiskReadPlan, type DiskReadReport, removeBaseRecord, writeBaseRecord } from '../pipeline/index.js';

/** The tag of the base kept for one datastore (each rotated USB disk has its own). */
export function baseTag(datastoreId: string): string {
  return `base-${datastoreId}`;
}

/** The read plans of a run's snapshots, each with the disk's base for `datastoreId` when one is kept. */
export async function plansWithBases(
  providers: readonly SnapshotProvider[],
  snapshots: readonly ColdSnapshot[],
  datastoreId: string | undefined,
): Promise<Map<string, DiskReadPlan>> {
  const plans = new Map<string, DiskReadPlan>();
  for (const s of snapshots) {
    const base = datastoreId === undefined ? undefined : await findBase(providers, s, datastoreId);
    plans.set(s.key, { readPath: s.snapshotPath, base: base && { snapshotPath: base.snapshotPath } });
  }
  return plans;
}

async function findBase(providers: readonly SnapshotProvider[], snapshot: ColdSnapshot, datastoreId: string): Promise<ColdSnapshot | undefined> {
  const provider = providers.find((p) => p.name === snapshot.provider);
  const all = (await provider?.list(snapshot.guestId, [snapshot]).catch(() => [])) ?? [];
  return all.find((b) => b.key === snapshot.key && b.tag === baseTag(datastoreId));
}

/**
 * Makes the run's snapshot of one disk the base for `datastoreId` (see the header for the order);
 * false (and a warning) when it could not be kept: then the caller removes it.
 */
export async function keepAsBase(
  providers: readonly SnapshotProvider[],
  snapshot: ColdSnapshot,
  datastoreId: string,
  read: DiskReadReport | undefined,
  log: TaskLog,
): Promise<boolean> {
  const provider = providers.find((p) => p.name === snapshot.provider);
  if (!provider || !read?.nextBase) return false;
  try {
    const old = await findBase(providers, snapshot, datastoreId);
    if (old) await removeBaseRecord(old.snapshotPath);
    const base = await provider.retag(snapshot, baseTag(datastoreId));
    await writeBaseRecord({ ...read.nextBase, snapshotPath: base.snapshotPath });
    log.info(`disk '${snapshot.key}': its cold snapshot is kept as the base of the next backup to this datastore ('${base.snapshotPath}')`);
    return true;
  } catch (err) {
    log.warn(`disk '${snapshot.key}': its cold snapshot could not be kept as the next backup's base - ${describeError(err)}; that backup reads every chunk`);
    return false;
  }
}
