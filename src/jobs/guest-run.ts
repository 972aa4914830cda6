/**
 * One guest of a job in stop mode, as vzdump does it: [backup lock] -> backup-start -> [pre-stop ->
 * ACPI shutdown] -> archive -> [still stopped?] -> publish -> backup-end -> [pre-restart -> start ->
 * post-restart] -> [unlock] -> log-end; backup-abort instead of backup-end on failure.
 * - Where the hypervisor has a guest lock (Proxmox), `lock: backup` is set first, for the whole backup,
 *   so nobody else can start the guest meanwhile; a guest locked by someone else fails here untouched.
 * - The guest is stopped only after its config, disks and the space were checked, is recorded in the
 *   restart journal before the shutdown (and before the lock), and is started again after any failure
 *   once coldvault has stopped it; the lock is removed after any failure too.
 * - With every driver, a guest whose disks were read while it was off must still be off when they have
 *   been read: else (GUEST_STARTED) that version is discarded, and the guest, running again by
 *   someone else's hand, is left as it is.
 * A shutdown that times out fails this guest and leaves it running, unless the job says forceStop
 * (then: hard stop).
 */
import {
  ColdvaultError,
  describeError,
  type GuestRunState,
  type HypervisorDriver,
  isColdvaultError,
  type ProgressListener,
  type TaskLog,
} from '../core/index.js';
import type { Datastore, LockDir } from '../datastore/index.js';
import type { Catalog } from '../catalog/index.js';
import { guestName, readGuestConfig, type StorageMap } from '../guests/index.js';
import { checkStillStopped } from '../guests/hypervisor/index.js';
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
  /** a restart-journal entry of an interrupted run that left this guest stopped: it was running before that run */
  adopted?: JournalEntry;
  /** read every chunk (`job run --full`) */
  full?: boolean;
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
  /** coldvault set (or may have set) the hypervisor's backup lock */
  private locked = false;
  private readonly env: HookEnv;

  constructor(
    private readonly ctx: GuestRunContext,
    private readonly vmid: string,
  ) {
    this.env = { DUMPDIR: ctx.store.dir, VMTYPE: 'qemu' };
  }

  private hook(phase: GuestPhase, log: TaskLog = this.ctx.log): Promise<void> {
    return runHook(this.ctx.job.hook, [phase, 'stop', this.vmid], this.env, log);
  }

  async execute(): Promise<number> {
    const { ctx, vmid } = this;
    const lock = await ctx.locks.acquire(`guest-${vmid}`, `job ${ctx.job.id} (task ${ctx.taskId})`, ctx.job.lockWait * 60_000);
    try {
      const status = await this.prepare();
      const readOff = status === 'running' || status === 'stopped'; // the disks are read with the guest off
      const result = await backupGuest({
        store: ctx.store,
        catalog: ctx.catalog,
        pool: ctx.pool,
        guestsDir: ctx.guestsDir,
        storages: ctx.storages,
        allowDiskPaths: ctx.allowDiskPaths,
        guestId: vmid,
        node: ctx.node,
        zstdLevel: ctx.zstdLevel,
        keep: ctx.job.keep,
        log: ctx.log,
        onProgress: ctx.onProgress,
        signal: ctx.signal,
        lockWaitMs: ctx.job.lockWait * 60_000,
        statusLine: `status = ${status}`,
        full: ctx.full,
        fullEvery: ctx.job.fullEvery,
        beforeArchive: (log) => (status === 'running' ? this.stopGuest(log) : Promise.resolve()),
        beforePublish: (log) => (readOff ? this.checkStillOff(log) : Promise.resolve()),
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
      if (this.locked) await this.unlockGuest(ctx.log);
      await this.hook('log-end').catch((err: unknown) => ctx.log.warn(describeError(err)));
      await lock.release();
    }
  }

  /** Config, backup lock, status, backup-start: what comes before the pipeline, which logs its own failure. */
  private async prepare(): Promise<GuestRunState> {
    const { ctx, vmid } = this;
    try {
      this.name = guestName((await readGuestConfig(ctx.guestsDir, vmid)).config);
      this.env.HOSTNAME = this.name;
      await this.lockGuest();
      const status = await ctx.driver.status(vmid);
      this.adopt(status);
      await this.hook('backup-start');
      return status;
    } catch (err) {
      ctx.log.error(`Backup of VM ${vmid} failed - ${describeError(err)}`);
      throw err;
    }
  }

  /** Sets the hypervisor's backup lock (journal first); a guest locked by someone else fails untouched. */
  private async lockGuest(): Promise<void> {
    const { ctx, vmid } = this;
    if (!ctx.driver.lockBackup) return;
    ctx.journal.recordLock(vmid, ctx.taskId);
    try {
      await ctx.driver.lockBackup(vmid);
    } catch (err) {
      // a `qm set` that timed out may still have set it; a lock held by someone else is theirs
      if (!isColdvaultError(err, 'GUEST_LOCKED')) await ctx.driver.unlockBackup?.(vmid).catch(() => undefined);
      ctx.journal.clearLock(vmid, ctx.taskId);
      throw err;
    }
    this.locked = true;
  }

  /** Removes the backup lock; if that fails it stays in the journal and the next run or `serve` start retries. */
  private async unlockGuest(log: TaskLog): Promise<void> {
    const { ctx, vmid } = this;
    try {
      await ctx.driver.unlockBackup?.(vmid);
    } catch (err) {
      log.error(`removing the backup lock of guest ${vmid} failed - ${describeError(err)}`);
      // kept in the journal for a retry, unless the lock is someone else's now (nothing of ours to remove)
      if (!isColdvaultError(err, 'GUEST_LOCKED')) return;
    }
    this.locked = false;
    ctx.journal.clearLock(vmid, ctx.taskId);
  }

  /** The guest must still be off now that its disks have been read; else this version is discarded. */
  private async checkStillOff(log: TaskLog): Promise<void> {
    try {
      await checkStillStopped(this.ctx.driver, this.vmid, { during: 'while its disks were being read', outcome: 'this version is discarded' });
    } catch (err) {
      if (isColdvaultError(err, 'GUEST_STARTED') && this.stopped) this.leaveRunning(log);
      throw err;
    }
    log.info('status after reading the disks = stopped');
  }

  /** Someone else started the guest coldvault held stopped: it is theirs now, not to be started again. */
  private leaveRunning(log: TaskLog): void {
    this.stopped = false;
    this.ctx.journal.clearStop(this.vmid, this.ctx.taskId);
    log.warn(`guest ${this.vmid} was started by someone else while coldvault held it stopped; it is left as it is and not started again`);
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
    journal.recordStop(this.vmid, taskId);
    journal.clear(this.vmid, adopted.taskId);
    this.stopped = true;
  }

  private async stopGuest(log: TaskLog): Promise<void> {
    const { ctx, vmid } = this;
    await this.hook('pre-stop', log);
    ctx.journal.recordStop(vmid, ctx.taskId);
    log.info('stopping virtual guest');
    try {
      await ctx.driver.shutdown(vmid, ctx.job.stopTimeout * 1000);
    } catch (err) {
      if (!isColdvaultError(err, 'STOP_TIMEOUT') || !ctx.job.forceStop) {
        if ((await ctx.driver.status(vmid).catch(() => 'unknown')) === 'running') ctx.journal.clearStop(vmid, ctx.taskId);
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
    ctx.journal.clearStop(vmid, ctx.taskId);
    log.info(`guest is online again after ${Math.round((Date.now() - begin) / 1000)} seconds`);
    await this.hook('post-restart', log);
  }
}
