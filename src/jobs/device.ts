/**
 * A job's external device (the seed's "external device", e.g. a USB disk): before the job the device
 * (`/dev/...`, `UUID=...` or `LABEL=...`) is found and first mounted READ-ONLY (no journal replay) to
 * see whose datastore it holds: a wrong disk, or an empty one the job may not initialise, is refused
 * before anything is written to it (not even a mount count). Only then it is mounted read-write on
 * the job's target dir. The first disk a job meets binds it (its datastore id is kept in the job); an
 * empty disk is initialised only when the job says `initDevice`. A missing, unmountable or wrong disk
 * fails the job before any guest is stopped. During the job, a guest that fails is checked against
 * the disk: when the disk vanished or shrank, or the failure is an I/O-class errno on the disk's
 * path, the disk failed (DEVICE_FAILED; the remaining guests are skipped, none is stopped). After the
 * job: sync, unmount, and the log says the disk may now be removed.
 */
import { ColdvaultError, describeError, isColdvaultError } from '../core/errors.js';
import type { TaskLog } from '../core/log.js';
import { Datastore } from '../datastore/index.js';
import { checkIdentity, deviceProblem, mountDevice, resolveDevice, unmountDevice, type BlockDevice } from '../targets/index.js';
import type { Job } from './job-model.js';
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
  const device = await resolveDevice(job.device);
  log.info(`external device ${job.device}: ${device.path} (${device.fstype ?? 'no filesystem'}${device.label ? `, label ${device.label}` : ''}${device.uuid ? `, UUID ${device.uuid}` : ''})`);
  await inspect(job, device, log);
  await mountDevice(device, job.store);
  log.info(`mounted ${device.path} on '${job.store}'`);
  try {
    await bindDatastore(job, log, jobs);
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

/** Read-only, without journal replay: whose datastore is it? A wrong or (without initDevice) empty disk is refused untouched. */
async function inspect(job: Job, device: BlockDevice, log: TaskLog): Promise<void> {
  await mountDevice(device, job.store, { readOnly: true, noRecovery: true });
  try {
    const found = await checkIdentity(job.store, job.deviceDatastoreId);
    if (found === 'empty' && !job.initDevice) throw notInitialised(job);
    log.info(`${device.path} holds ${found === 'empty' ? 'no datastore yet (the job initialises it)' : `datastore ${found}`}`);
  } finally {
    await unmountDevice(job.store);
  }
}

const notInitialised = (job: Job): ColdvaultError =>
  new ColdvaultError('WRONG_DATASTORE', `the disk ${job.device} holds no coldvault datastore; nothing was written to it (let the job initialise it: 'coldvault job edit ${job.id} --init-device')`);

async function bindDatastore(job: Job, log: TaskLog, jobs?: JobStore): Promise<void> {
  const found = await checkIdentity(job.store, job.deviceDatastoreId);
  if (found !== 'empty') {
    if (!job.deviceDatastoreId) bind(job, found, log, jobs);
    return;
  }
  if (!job.initDevice) throw notInitialised(job);
  const store = await Datastore.init(job.store);
  log.info(`initialised datastore ${store.identity.id} on the empty disk ${job.device}`);
  bind(job, store.identity.id, log, jobs);
}

function bind(job: Job, datastoreId: string, log: TaskLog, jobs?: JobStore): void {
  log.info(`job ${job.id} is now bound to datastore ${datastoreId}: other disks will be refused`);
  jobs?.edit(job.id, { deviceDatastoreId: datastoreId });
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
