/**
 * A job's external device (the seed's "external device", e.g. a USB disk): before the job the device
 * (`/dev/...`, `UUID=...` or `LABEL=...`) is found and mounted on the job's target dir, and the
 * datastore on it must be the one the job is bound to. The first disk a job meets binds it (its
 * datastore id is kept in the job); an empty disk is initialised only when the job says
 * `initDevice`. A missing, unmountable or wrong disk fails the job before any guest is stopped.
 * After the job: sync, unmount, and the log says the disk may now be removed.
 */
import { ColdvaultError } from '../core/errors.js';
import type { TaskLog } from '../core/log.js';
import { Datastore } from '../datastore/index.js';
import { checkIdentity, mountDevice, resolveDevice, unmountDevice } from '../targets/index.js';
import type { Job } from './job-model.js';
import type { JobStore } from './job-store.js';

export interface AttachedDevice {
  detach(): Promise<void>;
}

export async function attachDevice(job: Job, log: TaskLog, jobs?: JobStore): Promise<AttachedDevice | undefined> {
  if (!job.device) return undefined;
  const device = await resolveDevice(job.device);
  log.info(`external device ${job.device}: ${device.path} (${device.fstype ?? 'no filesystem'}${device.label ? `, label ${device.label}` : ''}${device.uuid ? `, UUID ${device.uuid}` : ''})`);
  await mountDevice(device, job.store);
  log.info(`mounted ${device.path} on '${job.store}'`);
  try {
    await bindDatastore(job, log, jobs);
  } catch (err) {
    await unmountDevice(job.store).catch(() => undefined);
    throw err;
  }
  return {
    detach: async () => {
      await unmountDevice(job.store);
      log.info(`synced and unmounted ${device.path}: the disk may now be removed`);
    },
  };
}

async function bindDatastore(job: Job, log: TaskLog, jobs?: JobStore): Promise<void> {
  const found = await checkIdentity(job.store, job.deviceDatastoreId);
  if (found !== 'empty') {
    if (!job.deviceDatastoreId) bind(job, found, log, jobs);
    return;
  }
  if (!job.initDevice) {
    throw new ColdvaultError('WRONG_DATASTORE', `the disk ${job.device} holds no coldvault datastore; nothing was written to it (let the job initialise it: 'coldvault job edit ${job.id} --init-device')`);
  }
  const store = await Datastore.init(job.store);
  log.info(`initialised datastore ${store.identity.id} on the empty disk ${job.device}`);
  bind(job, store.identity.id, log, jobs);
}

function bind(job: Job, datastoreId: string, log: TaskLog, jobs?: JobStore): void {
  log.info(`job ${job.id} is now bound to datastore ${datastoreId}: other disks will be refused`);
  jobs?.edit(job.id, { deviceDatastoreId: datastoreId });
}
