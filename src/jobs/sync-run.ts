/**
 * Runs a sync job (`kind: "sync"`): one task of type `sync` with a vzdump-style log. job lock ->
 * the source resolved (a node unknown or without a token, a name that is no S3 datastore of the
 * config, fail the job before any disk is touched) -> the job's external disk attached as for a
 * backup job (device.ts: identity checks, init, binding) -> open (or create) the target -> pull
 * (pipeline/sync) -> keep-N rotation per guest -> disk synced and unmounted -> webhook, mail. The task is ok
 * only when every guest synced. Hooks and scripts are for backup jobs (job-model.ts refuses them).
 *
 * `from` (the forms of pipeline/sync source.ts): NODE:STORE (a node of the ring), a folder datastore
 * by its absolute path, or a configured S3 datastore by name (env.s3Stores); an s3:// address is
 * refused (a job has no --endpoint), and so is any other name (the job CLI stores a configured
 * folder's path). `store`: a configured S3 datastore by name (no `device` then), else a folder.
 */
import { join } from 'node:path';
import { ColdvaultError, describeError, formatDuration } from '../core/index.js';
import { Catalog } from '../catalog/index.js';
import { LockDir } from '../datastore/index.js';
import { Datastore, S3Datastore, type S3StoreSettings } from '../datastore/index.js';
import {
  bucketSource,
  folderSource,
  FolderSink,
  nodeSource,
  parseSyncSource,
  S3Sink,
  SYNC_SOURCE_FORMS,
  syncStore,
  type PullSource,
  type SyncResult,
  type SyncSink,
} from '../pipeline/index.js';
import { ringStoreOptions, type RemoteStoreOptions } from '../targets/index.js';
import { attachDevice, type AttachedDevice } from './device.js';
import type { Job } from './job-model.js';
import type { GuestReport } from './mail.js';
import { type JobEnvironment, type JobResult, openOrCreateStore, openS3JobStore, reportJob } from './runner.js';
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
  await reportJob(job, env, task, { ok, guests, started });
  task.finish(ok, { guests, sync: result });
  return { taskId: task.id, ok, guests };
}

async function syncLocked(job: Job, env: JobEnvironment, task: TaskHandle): Promise<SyncResult> {
  const from = job.from ?? '';
  const source = jobSource(from, env);
  const s3Target = env.s3Stores?.(job.store);
  if (s3Target && job.device) throw new ColdvaultError('JOB_INVALID', `job '${job.id}': store ${job.store} is an S3 datastore: a device does not go with it`);
  const guests = job.all ? `all guests${job.exclude.length ? ` except ${job.exclude.join(',')}` : ''}` : job.vmid.join(' ');
  task.info(`Starting sync job - coldvault job ${job.id}: from ${from} to ${job.store}: ${guests}${job.keep ? ` --keep ${job.keep}` : ''}`);
  let device: AttachedDevice | undefined;
  let result: SyncResult;
  try {
    device = await attachDevice(job, task, env.jobs, env.sightings);
    result = await syncOnStore(job, env, task, source, s3Target);
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

type JobSource = { kind: 'node'; node: string; options: RemoteStoreOptions } | { kind: 'folder'; dir: string } | { kind: 's3'; settings: S3StoreSettings };

/** The job's source, resolved before anything is opened: CONFIG_INVALID naming the node when the ring does not know it, JOB_INVALID for a source a job cannot name. */
function jobSource(from: string, env: JobEnvironment): JobSource {
  const s3 = env.s3Stores?.(from);
  if (s3) return { kind: 's3', settings: s3 };
  const form = parseSyncSource(from);
  if (form?.kind === 'node') return { kind: 'node', node: form.node, options: ringStoreOptions(env.cluster, form.node, form.store) };
  if (form?.kind === 'folder') return { kind: 'folder', dir: form.path };
  if (form?.kind === 's3')
    throw new ColdvaultError('JOB_INVALID', `the sync source '${from}': a job names an S3 datastore by a datastore name of the config file`);
  if (form?.kind === 'name') {
    throw new ColdvaultError(
      'JOB_INVALID',
      `the sync source '${from}' is no S3 datastore of the config file (a job names a folder datastore by its absolute path)`,
    );
  }
  throw new ColdvaultError('JOB_INVALID', `the sync source '${from}' is none of ${SYNC_SOURCE_FORMS}`);
}

async function openSource(source: JobSource, label: string): Promise<PullSource> {
  if (source.kind === 'node') return nodeSource(source.options, label, source.node);
  if (source.kind === 'folder') return folderSource(await Datastore.open(source.dir), label);
  return bucketSource(await S3Datastore.open(source.settings), label);
}

/** The job's target: a configured S3 datastore (its catalog cache in the state dir), else the folder, made a datastore when empty. */
async function openTarget(job: Job, env: JobEnvironment, task: TaskHandle, s3: S3StoreSettings | undefined): Promise<{ sink: SyncSink; close: () => void }> {
  if (s3) {
    const { bucket, catalog, close } = await openS3JobStore(s3, env.stateDir, task);
    return { sink: new S3Sink(bucket, catalog), close };
  }
  const store = await openOrCreateStore(job.store, task);
  const catalog = await Catalog.open(store, { log: task });
  return { sink: new FolderSink(store, catalog), close: () => catalog.close() };
}

async function syncOnStore(job: Job, env: JobEnvironment, task: TaskHandle, from: JobSource, s3Target: S3StoreSettings | undefined): Promise<SyncResult> {
  const target = await openTarget(job, env, task, s3Target);
  try {
    const source = await openSource(from, job.from ?? '');
    try {
      return await syncStore({
        source,
        sink: target.sink,
        guestIds: job.all ? undefined : job.vmid,
        exclude: job.exclude,
        keep: job.keep,
        log: task,
        signal: env.signal,
        lockWaitMs: job.lockWait * 60_000,
      });
    } finally {
      source.close();
    }
  } finally {
    target.close();
  }
}

/** The mail's table: one row per guest, the disk bytes pulled as its size. */
function guestReports(result: SyncResult): GuestReport[] {
  return result.guests.map((g) => ({ vmid: g.id, name: '', status: g.ok ? 'ok' : 'failed', seconds: g.seconds, bytes: g.logicalBytes, error: g.error }));
}
