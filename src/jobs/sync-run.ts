/**
 * Runs a sync job (`kind: "sync"`): one task of type `sync` with a vzdump-style log. job lock ->
 * the source node from the config's ring (a node unknown or without a token fails the job before any
 * disk is touched) -> the job's external disk attached as for a backup job (device.ts: identity
 * checks, init, binding) -> open (or create) the datastore -> pull (pipeline/sync) -> keep-N rotation
 * per guest -> disk synced and unmounted -> mail. The task is ok only when every guest synced.
 * Hooks and scripts are for backup jobs (job-model.ts refuses them on a sync job).
 */
import { join } from 'node:path';
import { ColdvaultError, describeError, formatDuration } from '../core/index.js';
import { Catalog } from '../catalog/index.js';
import { LockDir } from '../datastore/index.js';
import { parseSyncSource, syncStore, type SyncResult } from '../pipeline/index.js';
import { clusterNode, remoteStoreOptions, type RemoteStoreOptions } from '../targets/index.js';
import { attachDevice, type AttachedDevice } from './device.js';
import type { Job } from './job-model.js';
import type { GuestReport } from './mail.js';
import { type JobEnvironment, type JobResult, mailReport, openOrCreateStore } from './runner.js';
import type { TaskHandle } from './task-store.js';

export async function runSyncJob(job: Job, env: JobEnvironment, onTask?: (task: TaskHandle) => void): Promise<JobResult> {
  const task = env.tasks.create('sync', { jobId: job.id, node: env.node, summary: `sync job ${job.id} from ${job.from ?? ''}`, startedBy: env.startedBy });
  onTask?.(task);
  const started = Date.now();
  let result: SyncResult | undefined;
  let fatal: unknown;
  try {
    const lock = await new LockDir(join(env.stateDir, 'locks')).acquire(`job-${job.id}`, `job ${job.id}`).catch((err: unknown) => {
      throw new ColdvaultError('JOB_RUNNING', `job '${job.id}' is already running (${describeError(err)})`, { cause: err });
    });
    try {
      result = await syncLocked(job, env, task);
    } finally {
      await lock.release();
    }
  } catch (err) {
    fatal = err;
    task.error(`Sync job failed - ${describeError(err)}`);
  }
  const ok = fatal === undefined && result?.ok === true;
  if (fatal === undefined) task.info(ok ? 'Sync job finished successfully' : 'Sync job finished with errors');
  task.info(`job ${job.id} took ${formatDuration((Date.now() - started) / 1000)}`);
  const guests = result ? guestReports(result) : [];
  await mailReport(job, env, task, ok, guests);
  task.finish(ok, { guests, sync: result });
  return { taskId: task.id, ok, guests };
}

async function syncLocked(job: Job, env: JobEnvironment, task: TaskHandle): Promise<SyncResult> {
  const from = job.from ?? '';
  const source = sourceOptions(from, env);
  const guests = job.all ? `all guests${job.exclude.length ? ` except ${job.exclude.join(',')}` : ''}` : job.vmid.join(' ');
  task.info(`Starting sync job - coldvault job ${job.id}: from ${from} to ${job.store}: ${guests}${job.keep ? ` --keep ${job.keep}` : ''}`);
  let device: AttachedDevice | undefined;
  let result: SyncResult;
  try {
    device = await attachDevice(job, task, env.jobs);
    result = await syncOnStore(job, env, task, source);
    const failedGuest = result.guests.find((g) => !g.ok);
    const diskFailed = failedGuest && (await device?.diagnose(failedGuest.error ?? ''));
    if (diskFailed) task.error(diskFailed.message);
  } catch (err) {
    const failure = (await device?.diagnose(err)) ?? err; // a failing disk is named as such
    await device?.detach().catch((detachErr: unknown) => task.error(`unmounting the external disk failed too: ${describeError(detachErr)}`));
    throw failure;
  }
  await device?.detach();
  return result;
}

/** The job's source as client options; CONFIG_INVALID naming the node when the ring does not know it. */
function sourceOptions(from: string, env: JobEnvironment): RemoteStoreOptions {
  const source = parseSyncSource(from);
  if (!source) throw new ColdvaultError('JOB_INVALID', `the sync source '${from}' is not NODE:STORE`);
  return remoteStoreOptions(clusterNode(env.cluster, source.node), source.store);
}

async function syncOnStore(job: Job, env: JobEnvironment, task: TaskHandle, source: RemoteStoreOptions): Promise<SyncResult> {
  const store = await openOrCreateStore(job.store, task);
  const catalog = await Catalog.open(store, { log: task });
  try {
    return await syncStore({
      source,
      from: job.from ?? '',
      store,
      catalog,
      guestIds: job.all ? undefined : job.vmid,
      exclude: job.exclude,
      keep: job.keep,
      log: task,
      signal: env.signal,
      lockWaitMs: job.lockWait * 60_000,
    });
  } finally {
    catalog.close();
  }
}

/** The mail's table: one row per guest, the disk bytes pulled as its size. */
function guestReports(result: SyncResult): GuestReport[] {
  return result.guests.map((g) => ({ vmid: g.id, name: '', status: g.ok ? 'ok' : 'failed', seconds: g.seconds, bytes: g.logicalBytes, error: g.error }));
}
