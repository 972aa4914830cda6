/**
 * One guest of a job in stop mode, as vzdump does it: backup-start -> [pre-stop -> ACPI shutdown]
 * -> archive -> backup-end -> [pre-restart -> start -> post-restart] -> log-end; backup-abort instead
 * of backup-end on failure. The guest is stopped only after its config, disks and the space were
 * checked, is recorded in the stop journal before the shutdown, and is started again after any
 * failure once coldvault has stopped it. A shutdown that times out fails this guest and leaves it
 * running, unless the job says forceStop (then: hard stop).
 */
import { ColdvaultError, describeError, isColdvaultError } from '../core/errors.js';
import type { HypervisorDriver } from '../core/hypervisor.js';
import type { TaskLog } from '../core/log.js';
import type { ProgressListener } from '../core/progress.js';
import type { Datastore, LockDir } from '../datastore/index.js';
import type { Catalog } from '../catalog/index.js';
import { guestName, readGuestConfig, type StorageMap } from '../guests/index.js';
import { backupGuest, type WorkerPool } from '../pipeline/index.js';
import { runHook, type GuestPhase, type HookEnv } from './hooks.js';
import type { Job } from './job-model.js';
import type { JournalEntry, StopJournal } from './journal.js';
import type { GuestReport } from './mail.js';

export interface GuestRunContext {
  job: Job;
  taskId: string;
  store: Datastore;
  catalog: Catalog;
  pool: WorkerPool;
  driver: HypervisorDriver;
  journal: StopJournal;
  /** the state dir's locks: one guest in one run at a time, across jobs and stores */
  locks: LockDir;
  guestsDir: string;
  storages: StorageMap;
  /** disks outside the storages that may be backed up (config `allowDiskPaths`) */
  allowDiskPaths?: readonly string[];
  node: string;
  zstdLevel: number;
  log: TaskLog;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
  /** a stop-journal entry of an interrupted run for this guest: it was running before that run */
  adopted?: JournalEntry;
}

export async function runGuest(ctx: GuestRunContext, vmid: string): Promise<GuestReport> {
  const started = Date.now();
  const run = new GuestRun(ctx, vmid);
  try {
    const bytes = await run.execute();
    return { vmid, name: run.name, status: 'ok', seconds: (Date.now() - started) / 1000, bytes };
  } catch (err) {
    return { vmid, name: run.name, status: 'failed', seconds: (Date.now() - started) / 1000, bytes: 0, error: describeError(err) };
  }
}

class GuestRun {
  name = '';
  private stopped = false;
  private readonly env: HookEnv;

  constructor(private readonly ctx: GuestRunContext, private readonly vmid: string) {
    this.env = { DUMPDIR: ctx.store.dir, VMTYPE: 'qemu' };
  }

  private hook(phase: GuestPhase, log: TaskLog = this.ctx.log): Promise<void> {
    return runHook(this.ctx.job.hook, [phase, 'stop', this.vmid], this.env, log);
  }

  async execute(): Promise<number> {
    const { ctx, vmid } = this;
    const lock = await ctx.locks.acquire(`guest-${vmid}`, `job ${ctx.job.id} (task ${ctx.taskId})`, ctx.job.lockWait * 60_000);
    try {
      this.name = guestName((await readGuestConfig(ctx.guestsDir, vmid)).config);
      this.env.HOSTNAME = this.name;
      const status = await ctx.driver.status(vmid);
      this.adopt(status);
      await this.hook('backup-start');
      const result = await backupGuest({
        store: ctx.store, catalog: ctx.catalog, pool: ctx.pool, guestsDir: ctx.guestsDir, storages: ctx.storages, allowDiskPaths: ctx.allowDiskPaths, guestId: vmid,
        node: ctx.node, zstdLevel: ctx.zstdLevel, keep: ctx.job.keep, log: ctx.log, onProgress: ctx.onProgress, signal: ctx.signal,
        lockWaitMs: ctx.job.lockWait * 60_000, statusLine: `status = ${status}`,
        beforeArchive: (log) => (status === 'running' ? this.stopGuest(log) : Promise.resolve()),
        afterArchive: async (_m, dir, log) => {
          this.env.TARGET = dir;
          this.env.LOGFILE = `${dir}/backup.log`;
          await this.hook('backup-end', log);
          if (this.stopped) await this.restart(log);
        },
      });
      return result.manifest.storedBytes;
    } catch (err) {
      await this.hook('backup-abort').catch(() => undefined);
      throw err;
    } finally {
      if (this.stopped) await this.restart(ctx.log).catch((err: unknown) => ctx.log.error(`starting guest ${vmid} again failed - ${describeError(err)}`));
      await this.hook('log-end').catch((err: unknown) => ctx.log.warn(describeError(err)));
      await lock.release();
    }
  }

  /**
   * A guest left stopped by an interrupted run was running before it: back it up as it is and start
   * it afterwards, instead of starting it first and shutting it down again while it boots.
   */
  private adopt(status: string): void {
    const { adopted, log, journal, taskId } = this.ctx;
    if (!adopted) return;
    if (status === 'running') {
      journal.clear(this.vmid, adopted.taskId);
      return;
    }
    log.warn(`guest ${this.vmid} was left stopped by the interrupted task ${adopted.taskId}; backing it up as it is and starting it afterwards`);
    journal.record(this.vmid, taskId);
    journal.clear(this.vmid, adopted.taskId);
    this.stopped = true;
  }

  private async stopGuest(log: TaskLog): Promise<void> {
    const { ctx, vmid } = this;
    await this.hook('pre-stop', log);
    ctx.journal.record(vmid, ctx.taskId);
    log.info('stopping virtual guest');
    try {
      await ctx.driver.shutdown(vmid, ctx.job.stopTimeout * 1000);
    } catch (err) {
      if (!isColdvaultError(err, 'STOP_TIMEOUT') || !ctx.job.forceStop) {
        if ((await ctx.driver.status(vmid).catch(() => 'unknown')) === 'running') ctx.journal.clear(vmid, ctx.taskId);
        else this.stopped = true;
        throw err;
      }
      log.warn(`${describeError(err)}; stopping it hard (forceStop)`);
      await ctx.driver.stop(vmid);
    }
    this.stopped = true;
  }

  private async restart(log: TaskLog): Promise<void> {
    const { ctx, vmid } = this;
    this.stopped = false;
    const begin = Date.now();
    await this.hook('pre-restart', log);
    log.info('restarting vm');
    try {
      await ctx.driver.start(vmid);
    } catch (err) {
      this.stopped = true;
      throw new ColdvaultError('START_FAILED', `guest ${vmid} did not start again: ${describeError(err)}`, { cause: err });
    }
    ctx.journal.clear(vmid, ctx.taskId);
    log.info(`guest is online again after ${Math.round((Date.now() - begin) / 1000)} seconds`);
    await this.hook('post-restart', log);
  }
}
