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
 */
import { ColdvaultError, describeError, isColdvaultError, type TaskLog } from '../core/index.js';
import { Datastore } from '../datastore/index.js';
import { checkIdentity, deviceProblem, mountDevice, readBlockDevices, resolveDevice, unmountDevice, type BlockDevice } from '../targets/index.js';
import { boundDatastores, deviceSpecs, type Job } from './job-model.js';
import type { JobStore } from './job-store.js';
import type { GuestReport } from './mail.js';

export interface AttachedDevice {
  /** DEVICE_FAILED when `failure` (an error or a guest's error text) means the disk failed or went away. */
  diagnose(failure: unknown): Promise<ColdvaultError | undefined>;
  detach(): Promise<void>;
}

/** Errnos of a disk that stopped answering (ENOMEM: seen on 6.x when an inode block cannot be read; EROFS: the fs aborted). */
const DEVICE_ERRNO = /\b(EIO|ENOMEM|ENXIO|ENODEV|EROFS)\b/;

export async function attachDevice(job: Job, log: TaskLog, jobs?: JobStore): Promise<AttachedDevice | undefined> {
  if (!job.device) return undefined;
  const { spec, device } = await findAttached(job, log);
  log.info(
    `external device ${spec}: ${device.path} (${device.fstype ?? 'no filesystem'}${device.label ? `, label ${device.label}` : ''}${device.uuid ? `, UUID ${device.uuid}` : ''})`,
  );
  await inspect(job, spec, device, log);
  await mountDevice(device, job.store);
  log.info(`mounted ${device.path} on '${job.store}'`);
  try {
    await bindDatastore(job, spec, log, jobs);
  } catch (err) {
    await unmountDevice(job.store).catch(() => undefined);
    throw err;
  }
  return {
    diagnose: (failure) => diagnose(device, job.store, failure),
    detach: async () => {
      await unmountDevice(job.store);
      log.info(`synced and unmounted ${device.path}: the disk may now be removed`);
    },
  };
}

/** The first of the job's disks that is attached (rotated disks: whichever is plugged in today). */
async function findAttached(job: Job, log: TaskLog): Promise<{ spec: string; device: BlockDevice }> {
  const specs = deviceSpecs(job);
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
  if (!first) throw new ColdvaultError('DEVICE_NOT_FOUND', `none of the job's disks is attached (${specs.join(', ')})`);
  if (others.length > 0) log.info(`also attached: ${others.map((f) => f.spec).join(', ')} (the job uses the first one listed)`);
  if (missing.length > 0) log.info(`not attached (rotated away): ${missing.join(', ')}`);
  return first;
}

/** Read-only (no journal replay, the block device read-only): whose datastore is it? A wrong or (without initDevice) empty disk is refused untouched. */
async function inspect(job: Job, spec: string, device: BlockDevice, log: TaskLog): Promise<void> {
  await mountDevice(device, job.store, { readOnly: true });
  try {
    const found = await checkIdentity(job.store, undefined);
    if (found === 'empty' && !job.initDevice) throw notInitialised(job, spec);
    if (found !== 'empty') checkBound(job, found);
    log.info(`${device.path} holds ${found === 'empty' ? 'no datastore yet (the job initialises it)' : `datastore ${found}`}`);
  } finally {
    await unmountDevice(job.store);
  }
}

/** A datastore the job is bound to, or a new one while the job has fewer bindings than disks; else WRONG_DATASTORE. */
function checkBound(job: Job, found: string): void {
  const bound = boundDatastores(job);
  if (bound.includes(found) || bound.length < deviceSpecs(job).length) return;
  const expected = bound.length === 1 ? `the expected datastore ${bound[0]}` : `one of the expected datastores ${bound.join(', ')}`;
  throw new ColdvaultError('WRONG_DATASTORE', `the device mounted on '${job.store}' holds datastore ${found}, not ${expected}; nothing was written to it`);
}

const notInitialised = (job: Job, spec: string): ColdvaultError =>
  new ColdvaultError(
    'WRONG_DATASTORE',
    `the disk ${spec} holds no coldvault datastore; nothing was written to it (let the job initialise it: 'coldvault job edit ${job.id} --init-device')`,
  );

async function bindDatastore(job: Job, spec: string, log: TaskLog, jobs?: JobStore): Promise<void> {
  const found = await checkIdentity(job.store, undefined);
  if (found !== 'empty') {
    checkBound(job, found);
    if (!boundDatastores(job).includes(found)) bind(job, found, log, jobs);
    return;
  }
  if (!job.initDevice) throw notInitialised(job, spec);
  const store = await Datastore.init(job.store);
  log.info(`initialised datastore ${store.identity.id} on the empty disk ${spec}`);
  bind(job, store.identity.id, log, jobs);
}

function bind(job: Job, datastoreId: string, log: TaskLog, jobs?: JobStore): void {
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
