/**
 * A job's external device (the seed's "external device", e.g. a USB disk): before the job the device
 * (`/dev/...`, `UUID=...` or `LABEL=...`) is found and first mounted READ-ONLY (no journal replay, the
 * block device itself read-only) to see whose datastore it holds: a wrong disk, or an empty one the
 * job may not initialise, is refused before anything is written to it (not even a mount count). Only
 * then it is mounted read-write on the job's target dir. Both mounts are nosuid,nodev,noexec, and a
 * target dir that is a datastore in use (a live lock under it, or another datastore in it) is
 * refused before either (targets' mountpoint rule). The first disk a job meets binds it (its datastore id is kept in the job); a
 * job may list several rotated disks (`UUID=a,UUID=b`): it uses the first one attached, and binds one
 * datastore per listed disk as it meets them. An empty disk is initialised only when the job says
 * `initDevice`. A missing, unmountable or wrong disk
 * fails the job before any guest is stopped. During the job, a guest that fails is checked against
 * the disk: when the disk vanished or shrank, or the failure is an I/O-class errno on the disk's
 * path, the disk failed (DEVICE_FAILED; the remaining guests are skipped, none is stopped). After the
 * job: sync, unmount, and the log says the disk may now be removed.
 *
 * Each time, the disk's datastore and guests are recorded as a sighting (device-sightings.ts: what the
 * Restore tab offers without mounting anything), after the mount and again before the unmount.
 *
 * mountStoreDevice is that lifecycle without the job (find, look read-only, mount, check or
 * initialise; the bindings are given, not stored): cluster mode's receiving node mounts a sending
 * job's disk on a datastore's folder with it (server/store-devices.ts), and the sending job binds
 * itself with bindDevice to the datastore the node answered.
 */
import { ColdvaultError, describeError, isColdvaultError, type TaskLog } from '../core/index.js';
import { Datastore } from '../datastore/index.js';
import { checkIdentity, deviceProblem, mountDevice, readBlockDevices, resolveDevice, unmountDevice, type BlockDevice } from '../targets/index.js';
import { boundDatastores, deviceSpecs, type Job } from './job-model.js';
import type { JobStore } from './job-store.js';
import type { GuestReport } from './mail.js';
import { diskGuests, type DeviceSightings } from './device-sightings.js';

export interface AttachedDevice {
  /** DEVICE_FAILED when `failure` (an error or a guest's error text) means the disk failed or went away. */
  diagnose(failure: unknown): Promise<ColdvaultError | undefined>;
  detach(): Promise<void>;
}

/** Errnos of a disk that stopped answering (ENOMEM: seen on 6.x when an inode block cannot be read; EROFS: the fs aborted). */
const DEVICE_ERRNO = /\b(EIO|ENOMEM|ENXIO|ENODEV|EROFS)\b/;

export async function attachDevice(job: Job, log: TaskLog, jobs?: JobStore, sightings?: DeviceSightings): Promise<AttachedDevice | undefined> {
  if (!job.device) return undefined;
  const request = {
    specs: deviceSpecs(job),
    dir: job.store,
    init: job.initDevice,
    bound: boundDatastores(job),
    whose: "the job's",
    sightings,
    seenBy: `job ${job.id}`,
  };
  const mounted = await mountStoreDevice({ ...request, initHint: `let the job initialise it: 'coldvault job edit ${job.id} --init-device'` }, log);
  try {
    bindDevice(job, mounted.datastoreId, log, jobs);
  } catch (err) {
    await unmountDevice(job.store).catch(() => undefined);
    throw err;
  }
  return mounted;
}

/** A device to mount on a datastore's folder for a while: a local job's, or one a sending node asked for (cluster mode). */
export interface StoreDeviceRequest {
  /** the disks, in the order of preference: rotated disks, the first one attached is used */
  specs: readonly string[];
  /** the folder it is mounted on (a job's store, a configured datastore's folder) */
  dir: string;
  /** an empty disk may be initialised */
  init: boolean;
  /** the datastores met so far, one per disk: another one is WRONG_DATASTORE once every disk has one */
  bound: readonly string[];
  /** whose disks, for messages: "the job's" */
  whose: string;
  /** how an empty disk is let be initialised, for the refusal's message */
  initHint: string;
  /** where what is seen on the disk is recorded (its datastore and guests), and as whose */
  sightings?: DeviceSightings;
  seenBy?: string;
}

export interface MountedStoreDevice extends AttachedDevice {
  spec: string;
  device: BlockDevice;
  /** the datastore on the disk (made now when `initialised`) */
  datastoreId: string;
  initialised: boolean;
}

/** Finds, inspects read-only, mounts read-write and checks (or initialises) the disk; unmounted again when any of it fails. */
export async function mountStoreDevice(req: StoreDeviceRequest, log: TaskLog): Promise<MountedStoreDevice> {
  const { spec, device } = await findAttached(req, log);
  log.info(attachedLine(spec, device));
  await inspect(req, spec, device, log);
  await mountDevice(device, req.dir);
  log.info(`mounted ${device.path} on '${req.dir}'`);
  let found: { id: string; initialised: boolean };
  try {
    found = await datastoreOn(req, spec, log);
  } catch (err) {
    await unmountDevice(req.dir).catch(() => undefined);
    throw err;
  }
  await recordSighting(req, device, found.id, log);
  return {
    spec,
    device,
    datastoreId: found.id,
    initialised: found.initialised,
    diagnose: (failure) => diagnose(device, req.dir, failure),
    detach: async () => {
      await recordSighting(req, device, found.id, log);
      await unmountDevice(req.dir);
      log.info(`synced and unmounted ${device.path}: the disk may now be removed`);
    },
  };
}

/** Records the disk's datastore and guests (folder names) as seen now; a failure is a WARN, never the job's. */
async function recordSighting(req: StoreDeviceRequest, device: BlockDevice, datastoreId: string, log: TaskLog): Promise<void> {
  if (!req.sightings) return;
  try {
    req.sightings.record(device, { datastoreId, dir: req.dir, guests: await diskGuests(req.dir), by: req.seenBy ?? req.whose });
  } catch (err) {
    log.warn(`recording what ${device.path} holds failed: ${describeError(err)}`);
  }
}

/**
 * The log line that names the disk a run uses: `external device SPEC: PATH (FSTYPE[, label L][, UUID U])`.
 * The overview's rotation view reads it back from the task logs (parseAttachedLine): keep the two together.
 */
export function attachedLine(spec: string, device: BlockDevice): string {
  return `external device ${spec}: ${device.path} (${device.fstype ?? 'no filesystem'}${device.label ? `, label ${device.label}` : ''}${device.uuid ? `, UUID ${device.uuid}` : ''})`;
}

export interface AttachedDisk {
  spec: string;
  path: string;
  label: string | null;
  uuid: string | null;
  /** the node that mounted it, for a cluster-mode job's line (`node NAME: external device ...`); null: this node */
  node: string | null;
}

const ATTACHED = /^(?:node (\S+): )?external device (.+?): (\/\S+) \(([^,()]+)(?:, label ([^()]*?))?(?:, UUID ([^,()\s]+))?\)$/;

/** The disk an `attachedLine` names (also as a cluster job logs the receiving node's line); undefined for any other line. */
export function parseAttachedLine(message: string): AttachedDisk | undefined {
  const m = ATTACHED.exec(message);
  if (!m) return undefined;
  return { node: m[1] ?? null, spec: m[2] as string, path: m[3] as string, label: m[5] ?? null, uuid: m[6] ?? null };
}

/** The first of the disks that is attached (rotated disks: whichever is plugged in today). */
async function findAttached(req: StoreDeviceRequest, log: TaskLog): Promise<{ spec: string; device: BlockDevice }> {
  const { specs } = req;
  if (specs.length === 1) return { spec: specs[0]!, device: await resolveDevice(specs[0]!) };
  const all = await readBlockDevices();
  const found: Array<{ spec: string; device: BlockDevice }> = [];
  const missing: string[] = [];
  for (const spec of specs) {
    try {
      found.push({ spec, device: await resolveDevice(spec, all) });
    } catch (err) {
      if (!isColdvaultError(err, 'DEVICE_NOT_FOUND')) throw err;
      missing.push(spec);
    }
  }
  const [first, ...others] = found;
  if (!first) throw new ColdvaultError('DEVICE_NOT_FOUND', `none of ${req.whose} disks is attached (${specs.join(', ')})`);
  if (others.length > 0) log.info(`also attached: ${others.map((f) => f.spec).join(', ')} (the job uses the first one listed)`);
  if (missing.length > 0) log.info(`not attached (rotated away): ${missing.join(', ')}`);
  return first;
}

/** Read-only (no journal replay, the block device read-only): whose datastore is it? A wrong or (without init) empty disk is refused untouched. */
async function inspect(req: StoreDeviceRequest, spec: string, device: BlockDevice, log: TaskLog): Promise<void> {
  await mountDevice(device, req.dir, { readOnly: true });
  try {
    const found = await checkIdentity(req.dir, undefined);
    if (found === 'empty' && !req.init) throw notInitialised(req, spec);
    if (found !== 'empty') checkBound(req, found);
    log.info(`${device.path} holds ${found === 'empty' ? 'no datastore yet (the job initialises it)' : `datastore ${found}`}`);
  } finally {
    await unmountDevice(req.dir);
  }
}

/** A datastore already bound, or a new one while there are fewer bindings than disks; else WRONG_DATASTORE. */
function checkBound(req: StoreDeviceRequest, found: string): void {
  const { bound } = req;
  if (bound.includes(found) || bound.length < req.specs.length) return;
  const expected = bound.length === 1 ? `the expected datastore ${bound[0]}` : `one of the expected datastores ${bound.join(', ')}`;
  throw new ColdvaultError('WRONG_DATASTORE', `the device mounted on '${req.dir}' holds datastore ${found}, not ${expected}; nothing was written to it`);
}

const notInitialised = (req: StoreDeviceRequest, spec: string): ColdvaultError =>
  new ColdvaultError('WRONG_DATASTORE', `the disk ${spec} holds no coldvault datastore; nothing was written to it (${req.initHint})`);

/** The datastore on the mounted disk, checked again read-write; an empty disk initialised now (when allowed). */
async function datastoreOn(req: StoreDeviceRequest, spec: string, log: TaskLog): Promise<{ id: string; initialised: boolean }> {
  const found = await checkIdentity(req.dir, undefined);
  if (found !== 'empty') {
    checkBound(req, found);
    return { id: found, initialised: false };
  }
  if (!req.init) throw notInitialised(req, spec);
  const store = await Datastore.init(req.dir);
  log.info(`initialised datastore ${store.identity.id} on the empty disk ${spec}`);
  return { id: store.identity.id, initialised: true };
}

/** Binds the job to the datastore found on its disk at its first meeting (a datastore it knows already: nothing to do). */
export function bindDevice(job: Job, datastoreId: string, log: TaskLog, jobs?: JobStore): void {
  if (boundDatastores(job).includes(datastoreId)) return;
  const bound = [...boundDatastores(job), datastoreId];
  const disks = deviceSpecs(job).length;
  log.info(
    disks > 1
      ? `job ${job.id} is now bound to datastore ${datastoreId} (disk ${bound.length} of ${disks}${bound.length === disks ? ': other disks will be refused' : ''})`
      : `job ${job.id} is now bound to datastore ${datastoreId}: other disks will be refused`,
  );
  job.deviceDatastoreId = bound.join(',');
  jobs?.edit(job.id, { deviceDatastoreId: job.deviceDatastoreId });
}

async function diagnose(device: BlockDevice, store: string, failure: unknown): Promise<ColdvaultError | undefined> {
  if (isColdvaultError(failure, 'DEVICE_FAILED')) return failure;
  const text = describeError(failure);
  const problem = await deviceProblem(device);
  if (problem === undefined && !(DEVICE_ERRNO.test(text) && text.includes(`'${store}`))) return undefined;
  const name = device.uuid ? `${device.path} (UUID=${device.uuid})` : device.path;
  return new ColdvaultError('DEVICE_FAILED', `the external disk ${name} failed or was removed during the backup: ${problem ? `${problem}; ` : ''}${text}`, {
    cause: failure instanceof Error ? failure : new Error(text),
  });
}

/** After a guest failed: when the disk failed, the log and the guest's report say so; returns the error. */
export async function checkDeviceAfter(device: AttachedDevice | undefined, report: GuestReport, log: TaskLog): Promise<ColdvaultError | undefined> {
  if (!device || report.status === 'ok') return undefined;
  const failed = await device.diagnose(report.error ?? '');
  if (!failed) return undefined;
  log.error(failed.message);
  report.error = failed.message;
  return failed;
}
