/**
 * Runs a job: one task with a vzdump-style log. job lock -> the job's key (`encrypt`, job-key.ts)
 * -> recover guests left stopped by dead runs -> remove cold snapshots left by dead runs -> job-init -> open the datastore -> job-start -> script before -> each guest (guest-run.ts) ->
 * script after -> job-end (job-abort only when the job itself fails) -> webhook (notify/) -> mail. A failure of one guest does not stop the
 * others (but a failed external disk does: device.ts); the task is ok only when every guest is. If the
 * datastore cannot be opened, no guest is stopped at all; nor when the job's key cannot be opened (then
 * the guests dead runs left stopped are started again, this job's too, since it backs none up).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ColdvaultError, describeError, formatDuration, type HypervisorDriver, type ProgressListener, type TaskLog } from '../core/index.js';
import { Datastore, LockDir, S3Datastore, type S3StoreSettings } from '../datastore/index.js';
import { Catalog, openCachedCatalog } from '../catalog/index.js';
import type { StorageMap } from '../guests/index.js';
import { LocalTarget, S3Target, s3Source, WorkerPool } from '../pipeline/index.js';
import { bootTestReports, type BootTestSettings } from './boot-tests.js';
import type { ClusterConfig } from '../targets/index.js';
import type { VersionKey } from '../format/index.js';
import { attachClusterDevice, type ClusterJobTarget, openClusterTarget, type JobTarget } from './cluster-target.js';
import { runGuest } from './guest-run.js';
import { removeLeftoverSnapshots } from './snapshot-leftovers.js';
import { runHook, type HookEnv } from './hooks.js';
import type { Job } from './job-model.js';
import { loadJobKey } from './job-key.js';
import type { JournalEntry, StopJournal } from './journal.js';
import { attachDevice, checkDeviceAfter, type AttachedDevice } from './device.js';
import type { JobStore } from './job-store.js';
import { composeJobMail, sendMail, type GuestReport, type MailConfig } from './mail.js';
import type { TaskHandle, TaskStore } from './task-store.js';
import { runSyncJob } from './sync-run.js';
import { sendWebhookReport, type WebhookSettings } from './notify/index.js';
import type { DeviceSightings } from './device-sightings.js';

export interface JobEnvironment {
  node: string;
  stateDir: string;
  guestsDir: string;
  storages: StorageMap;
  /** disks outside the storages that may be backed up (config `allowDiskPaths`) */
  allowDiskPaths?: readonly string[];
  zstdLevel: number;
  tasks: TaskStore;
  journal: StopJournal;
  driver: HypervisorDriver;
  mail?: MailConfig;
  /** tries, timeout and backoff of webhook reports (config `webhook`) */
  webhook?: WebhookSettings;
  /** where what a job sees on its external disk is recorded (the Restore tab's disks) */
  sightings?: DeviceSightings;
  onProgress?: ProgressListener;
  /** aborts the run: the guest being backed up fails (and is started again), the rest are skipped */
  signal?: AbortSignal;
  /** to bind a job to the datastore on its external device at the first run */
  jobs?: JobStore;
  /** who started the run, for the task list (default: the local user on the command line) */
  startedBy?: string;
  /** this run reads every chunk (`job run --full`): no changed-extent nightly from a base */
  full?: boolean;
  /** the ring (config `cluster`): where a cluster-mode job pushes, where a sync job's source node is */
  cluster?: ClusterConfig;
  /** the host's boot test settings (config `bootTest`: accelerators, how many at once) */
  bootTest?: BootTestSettings;
  /** the settings of a configured S3 datastore by name (config `datastores` of type "s3"), undefined for any other store */
  s3Stores?: (name: string) => S3StoreSettings | undefined;
}

export interface JobResult {
  taskId: string;
  ok: boolean;
  guests: GuestReport[];
}

/** Runs the job to the end; `onTask` sees the task as soon as it exists (for live logs). */
export async function runJob(job: Job, env: JobEnvironment, onTask?: (task: TaskHandle) => void): Promise<JobResult> {
  if (job.kind === 'sync') return runSyncJob(job, env, onTask);
  const task = env.tasks.create('backup', { jobId: job.id, node: env.node, summary: `job ${job.id}`, startedBy: env.startedBy });
  onTask?.(task);
  const started = Date.now();
  let guests: GuestReport[] = [];
  let fatal: unknown;
  try {
    const lock = await new LockDir(join(env.stateDir, 'locks')).acquire(`job-${job.id}`, `job ${job.id}`).catch((err: unknown) => {
      throw new ColdvaultError('JOB_RUNNING', `job '${job.id}' is already running (${describeError(err)})`, { cause: err });
    });
    try {
      guests = await runLocked(job, env, task);
    } finally {
      await lock.release();
    }
  } catch (err) {
    fatal = err;
    task.error(`Backup job failed - ${describeError(err)}`);
  }
  const ok = fatal === undefined && guests.every((g) => g.status === 'ok');
  if (fatal === undefined) task.info(ok ? 'Backup job finished successfully' : 'Backup job finished with errors');
  task.info(`job ${job.id} took ${formatDuration((Date.now() - started) / 1000)}`);
  await reportJob(job, env, task, { ok, guests, started });
  task.finish(ok, { guests });
  return { taskId: task.id, ok, guests };
}

async function runLocked(job: Job, env: JobEnvironment, task: TaskHandle): Promise<GuestReport[]> {
  const vmids = selectGuests(job, env.guestsDir);
  task.info(
    `Starting new backup job - coldvault job ${job.id}: ${vmids.join(' ') || '(no guests)'} --mode ${job.mode} --store ${job.store}${job.keep ? ` --keep ${job.keep}` : ''} --compress ${job.compress}${job.encrypt ? ` --encrypt ${job.encrypt.keyFile}` : ''}`,
  );
  const encryption = await keyBeforeAnyGuest(job, env, task);
  // guests an interrupted run left stopped: the ones of this job are backed up as they are (stopped)
  // and started afterwards; the others are started now. Backup locks it left are removed now.
  const adopted = new Map(
    env.journal
      .orphans()
      .filter((e) => e.stopped && vmids.includes(e.vmid))
      .map((e) => [e.vmid, e]),
  );
  await env.journal.recover(env.driver, task, new Set(adopted.keys()));
  await removeLeftoverSnapshots(env, task);
  const hookEnv: HookEnv = { DUMPDIR: job.store };
  await runHook(job.hook, ['job-init'], hookEnv, task);
  let device: AttachedDevice | undefined;
  let failed = false;
  let cluster: ClusterJobTarget | undefined;
  try {
    cluster = job.mode === 'cluster' ? openClusterTarget(job, env, task) : undefined;
    device = cluster ? await attachClusterDevice(job, cluster, task, env.jobs) : await attachDevice(job, task, env.jobs, env.sightings);
    return await runOnStore(job, env, task, vmids, adopted, hookEnv, device, cluster, encryption);
  } catch (err) {
    failed = true;
    await runHook(job.hook, ['job-abort'], hookEnv, task).catch(() => undefined);
    throw (await device?.diagnose(err)) ?? err; // a failing disk is named as such
  } finally {
    await detachDevice(device, task, failed);
    cluster?.close();
  }
}

/**
 * The job's key, opened before any guest is stopped, hook run or disk mounted. When it cannot be
 * opened the run fails here; the guests interrupted runs left stopped are started again first (this
 * run backs none of them up).
 */
async function keyBeforeAnyGuest(job: Job, env: JobEnvironment, task: TaskHandle): Promise<VersionKey | undefined> {
  try {
    const key = await loadJobKey(job);
    if (key) task.info(`encryption: key ${key.fingerprint} from key file '${job.encrypt?.keyFile ?? ''}'`);
    return key;
  } catch (err) {
    await env.journal.recover(env.driver, task);
    throw err;
  }
}

/** Unmounts the job's disk. After a failed job an unmount failure is logged, not thrown: the job's own error is the one to report. */
async function detachDevice(device: AttachedDevice | undefined, task: TaskHandle, jobFailed: boolean): Promise<void> {
  try {
    await device?.detach();
  } catch (err) {
    if (!jobFailed) throw err;
    task.error(`unmounting the external disk failed too: ${describeError(err)}`);
  }
}

async function runOnStore(
  job: Job,
  env: JobEnvironment,
  task: TaskHandle,
  vmids: string[],
  adopted: Map<string, JournalEntry>,
  hookEnv: HookEnv,
  device?: AttachedDevice,
  cluster?: JobTarget,
  encryption?: VersionKey,
): Promise<GuestReport[]> {
  const jobTarget = cluster ?? (await openJobStore(job, env, task));
  const pool = new WorkerPool();
  const reports: GuestReport[] = [];
  let diskFailed: unknown;
  try {
    await runHook(job.hook, ['job-start'], hookEnv, task);
    await runHook(job.scriptBefore, ['job-start'], hookEnv, task);
    for (const vmid of vmids) {
      const skip = env.signal?.aborted ? 'job aborted' : diskFailed ? 'the external disk failed' : undefined;
      if (skip) {
        task.error(`${skip}: guest ${vmid} and the following ones are not backed up`);
        reports.push({ vmid, name: '', status: 'failed', seconds: 0, bytes: 0, error: skip });
        continue;
      }
      const report = await runGuest(
        {
          job,
          taskId: task.id,
          target: jobTarget.target,
          dumpDir: jobTarget.dumpDir,
          pool,
          locks: new LockDir(join(env.stateDir, 'locks')),
          driver: env.driver,
          journal: env.journal,
          guestsDir: env.guestsDir,
          storages: env.storages,
          allowDiskPaths: env.allowDiskPaths,
          node: env.node,
          zstdLevel: job.compress === 'none' ? 0 : env.zstdLevel,
          log: task,
          onProgress: env.onProgress,
          signal: env.signal,
          adopted: adopted.get(vmid),
          full: env.full,
          encryption,
        },
        vmid,
      );
      diskFailed ??= await checkDeviceAfter(device, report, task);
      reports.push(report);
    }
    if (job.bootTest && jobTarget.boot) {
      const from = jobTarget.boot;
      await bootTestReports({ job, from, pool, stateDir: env.stateDir, settings: env.bootTest, key: encryption, log: task, abort: env.signal }, reports);
    }
    await runAfter(job, hookEnv, task);
    return reports;
  } finally {
    await pool.close();
    if (!cluster) jobTarget.close();
  }
}

/** The job's datastore: a configured S3 datastore by name (its catalog cache in the state dir), else a folder. */
async function openJobStore(job: Job, env: JobEnvironment, task: TaskLog): Promise<JobTarget> {
  const s3 = env.s3Stores?.(job.store);
  if (!s3) {
    if (job.objectLockDays !== undefined) {
      throw new ColdvaultError('JOB_INVALID', `job '${job.id}': objectLockDays goes with an S3 datastore; '${job.store}' is a folder`);
    }
    return openLocalTarget(job.store, task);
  }
  const { bucket, catalog, close } = await openS3JobStore(s3, env.stateDir, task);
  try {
    const boot = { source: { source: s3Source(bucket) }, catalog, storeName: bucket.identity.id };
    return { target: new S3Target(bucket, catalog, { lockDays: job.objectLockDays }), dumpDir: bucket.dir, boot, close };
  } catch (err) {
    close();
    throw err;
  }
}

/** An S3 datastore and its catalog: a local cache in `<stateDir>/catalogs/<datastore id>.sqlite`, rebuilt from the bucket when new. */
export async function openS3JobStore(
  settings: S3StoreSettings,
  stateDir: string,
  log: TaskLog,
): Promise<{ bucket: S3Datastore; catalog: Catalog; close: () => void }> {
  const bucket = await S3Datastore.open(settings);
  try {
    const catalog = await openCachedCatalog(bucket, bucket.identity.id, stateDir, log);
    return {
      bucket,
      catalog,
      close: () => {
        catalog.close();
        bucket.close();
      },
    };
  } catch (err) {
    bucket.close();
    throw err;
  }
}

async function openLocalTarget(dir: string, task: TaskLog): Promise<JobTarget> {
  const store = await openOrCreateStore(dir, task);
  const catalog = await Catalog.open(store, { log: task });
  const boot = { source: { store }, catalog, storeName: store.identity.id };
  return { target: new LocalTarget(store, catalog), dumpDir: store.dir, boot, close: () => catalog.close() };
}

async function runAfter(job: Job, hookEnv: HookEnv, task: TaskLog): Promise<void> {
  await runHook(job.scriptAfter, ['job-end'], hookEnv, task).catch((err: unknown) => task.error(describeError(err)));
  await runHook(job.hook, ['job-end'], hookEnv, task); // vzdump: job-end after the last guest, failed ones too
}

/** The job's guests: its list, or every guest in the guests dir but the excluded ones. */
export function selectGuests(job: Job, guestsDir: string): string[] {
  if (!job.all) return job.vmid;
  const all = existsSync(guestsDir)
    ? readdirSync(guestsDir)
        .filter((n) => /^[1-9]\d{2,8}\.conf$/.test(n))
        .map((n) => n.slice(0, -5))
    : [];
  return all.filter((id) => !job.exclude.includes(id)).sort((a, b) => Number(a) - Number(b));
}

export async function openOrCreateStore(dir: string, log: TaskLog): Promise<Datastore> {
  const empty = !existsSync(dir) || readdirSync(dir).filter((n) => n !== 'lost+found').length === 0;
  if (!empty) return Datastore.open(dir);
  const store = await Datastore.init(dir);
  log.info(`created datastore ${store.identity.id} in '${dir}'`);
  return store;
}

/** The job's reports when it ends: its webhook, then the mail (whose log then says how the webhook went). Never throws. */
export async function reportJob(job: Job, env: JobEnvironment, task: TaskHandle, run: { ok: boolean; guests: GuestReport[]; started: number }): Promise<void> {
  const outcome = {
    jobId: job.id,
    node: env.node,
    kind: job.kind,
    taskId: task.id,
    ok: run.ok,
    start: new Date(run.started),
    end: new Date(),
    guests: run.guests,
  };
  await sendWebhookReport({ webhook: job.webhook, outcome, settings: env.webhook, log: task });
  await mailReport(job, env, task, run.ok, run.guests);
}

export async function mailReport(job: Job, env: JobEnvironment, task: TaskHandle, ok: boolean, guests: GuestReport[]): Promise<void> {
  const bootFailed = guests.some((g) => g.bootTest && !g.bootTest.ok);
  if (job.mailto.length === 0 || (job.mailNotification === 'failure' && ok && !bootFailed)) return;
  if (!env.mail) {
    task.warn(`no mail sent to ${job.mailto.join(', ')}: the config file has no 'mail' section`);
    return;
  }
  const from = env.mail.from ?? `coldvault@${env.node}`;
  const log = env.tasks
    .lines(task.id)
    .map((l) => `${l.level}: ${l.message}`)
    .join('\n');
  const mail = composeJobMail({ node: env.node, jobId: job.id, ok, guests, log, to: job.mailto, from });
  try {
    await sendMail(env.mail, { to: job.mailto, from, ...mail });
    task.info(`sent the report to ${job.mailto.join(', ')}`);
  } catch (err) {
    task.error(describeError(err));
  }
}
