/**
 * Which attached disks hold a coldvault datastore, told WITHOUT mounting any (the Restore tab's
 * device picker, GET /api/v1/devices/datastores). The attached, unmounted filesystems come from lsblk
 * and blkid (targets' discovery); each is matched, by what coldvault already knows, against:
 *   1. a sighting (device-sightings.ts): coldvault had this filesystem (by UUID) mounted before and
 *      read its datastore id, the folder it was mounted on and its guests: exact, as of then;
 *   2. the jobs whose `device` names it (`UUID=`, `LABEL=`, `/dev/...`): the datastore the job is
 *      bound to when it has one disk; a rotated job's bound datastores (one of them) when the disk
 *      was not seen yet; the job's store is the folder to mount it on;
 *   3. config `storeDevices` (a datastore's disks, cluster mode): that datastore's folder.
 * A disk is offered when a datastore id is known for it; the other external disks are listed apart
 * (`others`: typed by hand, as before). Nothing here opens, mounts or reads a disk: a disk coldvault
 * never had mounted and no job names is not offered (an explicit probe, `coldvault devices` or POST
 * /api/v1/devices/probe, records it). What is offered is a hint: the restore mounts the disk
 * read-only and opens its datastore, which checks the identity on the disk itself.
 */
import { isColdvaultError } from '../core/index.js';
import { candidate, readBlockDevices, resolveDevice, selectCandidates, type BlockDevice, type CandidateDevice } from '../targets/index.js';
import type { DeviceSighting, DiskGuest } from './device-sightings.js';
import { boundDatastores, deviceSpecs, type Job } from './job-model.js';

export interface DatastoreDisk extends CandidateDevice {
  /** what a restore sends as fromDevice: `UUID=...` when the filesystem has one, else its path */
  spec: string;
  /** the datastore on it: one when known; a rotated job's bound ones (one of them) when this disk was not seen yet */
  datastoreIds: string[];
  /** the folder to mount it on for a restore: where coldvault had it mounted, else its job's store or its storeDevices datastore's folder */
  store: string | null;
  /** the jobs whose device names it */
  jobs: string[];
  /** its guests and their versions when coldvault last had it mounted (null: not known) */
  guests: DiskGuest[] | null;
  /** when and by what coldvault last had it mounted (null: never; known from a job's binding) */
  seen: { time: string; by: string } | null;
}

export interface DiskDiscovery {
  disks: DatastoreDisk[];
  /** the other attached, unmounted external disks (nothing known of them) */
  others: CandidateDevice[];
}

export interface DiscoveryKnowledge {
  jobs: readonly Job[];
  sightings: readonly DeviceSighting[];
  /** config storeDevices: datastore name -> its disks' specs */
  storeDevices?: Readonly<Record<string, readonly string[]>>;
  /** config datastores: name -> folder */
  datastores?: Readonly<Record<string, string>>;
}

/** The attached disks with a datastore known for them, and the other external ones; `devices` for tests (default: lsblk now). */
export async function discoverDatastoreDisks(known: DiscoveryKnowledge, devices?: BlockDevice[]): Promise<DiskDiscovery> {
  const all = devices ?? (await readBlockDevices());
  const named = await namedBy(known, all);
  const disks: DatastoreDisk[] = [];
  for (const d of selectCandidates(all, true)) {
    const disk = describeDisk(d, known, named.get(d.path) ?? { jobs: [], stores: [] });
    if (disk.datastoreIds.length > 0) disks.push(disk);
  }
  const offered = new Set(disks.map((d) => d.path));
  return {
    disks,
    others: selectCandidates(all, false)
      .filter((d) => !offered.has(d.path))
      .map(candidate),
  };
}

interface Naming {
  jobs: Job[];
  /** storeDevices datastores (names) that list the disk */
  stores: string[];
}

/** Which jobs and storeDevices entries name each attached device (by path). */
async function namedBy(known: DiscoveryKnowledge, all: BlockDevice[]): Promise<Map<string, Naming>> {
  const out = new Map<string, Naming>();
  const entry = (path: string): Naming => out.get(path) ?? out.set(path, { jobs: [], stores: [] }).get(path)!;
  for (const job of known.jobs) {
    if (job.mode === 'cluster') continue; // its disk is plugged into the node that receives its backups
    for (const spec of deviceSpecs(job)) {
      const path = await attachedPath(spec, all);
      if (path && !entry(path).jobs.includes(job)) entry(path).jobs.push(job);
    }
  }
  for (const [store, specs] of Object.entries(known.storeDevices ?? {})) {
    for (const spec of specs) {
      const path = await attachedPath(spec, all);
      if (path) entry(path).stores.push(store);
    }
  }
  return out;
}

/** The path of the one attached device `spec` names, or undefined (none, or several: a label twice). */
async function attachedPath(spec: string, all: BlockDevice[]): Promise<string | undefined> {
  try {
    return (await resolveDevice(spec, all)).path;
  } catch (err) {
    if (isColdvaultError(err, 'DEVICE_NOT_FOUND') || isColdvaultError(err, 'USAGE')) return undefined;
    throw err;
  }
}

function describeDisk(d: BlockDevice, known: DiscoveryKnowledge, naming: Naming): DatastoreDisk {
  const seen = d.uuid ? known.sightings.find((s) => s.uuid === d.uuid?.toLowerCase()) : undefined;
  const fromJobs = [...new Set(naming.jobs.flatMap(jobDatastores))];
  const jobStore = naming.jobs[0]?.store;
  const deviceStore = naming.stores.map((name) => known.datastores?.[name]).find((dir) => dir !== undefined);
  return {
    ...candidate(d),
    spec: d.uuid ? `UUID=${d.uuid}` : d.path,
    datastoreIds: seen ? [seen.datastoreId] : fromJobs,
    store: seen?.dir ?? jobStore ?? deviceStore ?? null,
    jobs: naming.jobs.map((j) => j.id),
    guests: seen?.guests ?? null,
    seen: seen ? { time: seen.seen, by: seen.by } : null,
  };
}

/** A job's datastores as a disk it names may hold: its one binding for one disk, else every binding (one of them). */
function jobDatastores(job: Job): string[] {
  const bound = boundDatastores(job);
  return deviceSpecs(job).length === 1 ? bound.slice(0, 1) : bound;
}
