/**
 * One guest of a job in stop mode, in vzdump's hook order, where the guest runs again before its data
 * is copied: [backup lock] -> backup-start -> [pre-stop -> ACPI shutdown] -> [cold snapshot of every
 * disk -> still stopped? -> pre-restart -> start -> post-restart] -> read the snapshots -> publish ->
 * backup-end -> [unlock] -> log-end; backup-abort instead of backup-end on failure.
 * - Cold snapshots (job `snapshot: auto`, cold-snapshots.ts): the guest is off only for shutdown,
 *   snapshot and start. Where a disk cannot be snapshotted (ext4, NTFS, a block device ...) or with
 *   `snapshot: off`, none is, and the guest stays off while its disks are read: ... read the disks ->
 *   still stopped? -> pre-restart -> start -> post-restart -> publish; so it starts before the publish
 *   in both flows, and the hook order is the same. A failed start does not discard what was read:
 *   the version is published and the guest's run fails after it. The run's snapshots are settled
 *   (today: removed) once the version is published or the backup failed.
 * - Where the hypervisor has a guest lock (Proxmox), `lock: backup` is set first, for the whole backup,
 *   so nobody else can start the guest meanwhile; a guest locked by someone else fails here untouched.
 * - The guest is stopped only after its config, disks and the space were checked, is recorded in the
 *   restart journal before the shutdown (and before the lock), and is started again after any failure
 *   once coldvault has stopped it; the lock is removed after any failure too.
 * - With every driver, a guest whose disks were read while it was off must still be off when they have
 *   been read (or, with snapshots, once they are snapshotted): else (GUEST_STARTED) that version is
 *   discarded, and the guest, running again by someone else's hand, is left as it is.
 * - The downtime (shutdown, snapshot and start durations) is measured here and handed to the pipeline.
 * A shutdown that times out fails this guest and leaves it running, unless the job says forceStop
 * (then: hard stop). How long the guest is off is measured by downtime-clock.ts.
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
import type { LockDir } from '../datastore/index.js';
import { guestName, readGuestConfig, type StorageMap } from '../guests/index.js';
import { checkStillStopped } from '../guests/hypervisor/index.js';
import type { VersionKey } from '../format/index.js';
import { backupGuest, type BackupTarget, type DiskReadPlan, type DiskReadReport, type WorkerPool } from '../pipeline/index.js';
import { snapshotGuestDisks, type GuestSnapshots } from './cold-snapshots.js';
import { DowntimeClock } from './downtime-clock.js';
import { runHook, type GuestPhase, type HookEnv } from './hooks.js';
import type { Job } from './job-model.js';
import type { JournalEntry, StopJournal } from './journal.js';
import type { GuestReport } from './mail.js';

export interface GuestRunContext {
  job: Job;
  taskId: string;
  /** where the versions go: the local datastore, or the previous node's in cluster mode (pipeline/backup-target.ts) */
  target: BackupTarget;
  /** the hooks' DUMPDIR: the datastore folder, or `NODE:STORE` in cluster mode */
  dumpDir: string;
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
  /** the job's key (job `encrypt`), opened once per run before any guest was stopped: the version is encrypted with it */
  encryption?: VersionKey;
}

export async function runGuest(ctx: GuestRunContext, vmid: string): Promise<GuestReport> {
  const started = Date.now();
  const run = new GuestRun(ctx, vmid);
  try {
    const { bytes, logicalBytes, wire, version } = await run.execute();
    return {
      vmid,
      name: run.name,
      status: 'ok',
      seconds: (Date.now() - started) / 1000,
      bytes,
      logicalBytes,
      downtimeMs: run.clock.offMs(),
      version,
      ...wireFields(wire),
    };
  } catch (err) {
    const seconds = (Date.now() - started) / 1000;
    return { vmid, name: run.name, status: 'failed', seconds, bytes: 0, downtimeMs: run.clock.offMs(), error: describeError(err) };
  }
}

class GuestRun {
  name = '';
  /** how long the guest is held off: the shutdown, [snapshot] and start steps feed it */
  readonly clock = new DowntimeClock();
  private stopped = false;
  /** coldvault set (or may have set) the hypervisor's backup lock */
  private locked = false;
  /** the cold snapshots this run reads, if it made them */
  private snapshots: GuestSnapshots | undefined;
  /** a start that failed once the disks were frozen: reported after the version is published */
  private startFailure: Error | undefined;
  private readonly env: HookEnv;

  constructor(
    private readonly ctx: GuestRunContext,
    private readonly vmid: string,
  ) {
    this.env = { DUMPDIR: ctx.dumpDir, VMTYPE: 'qemu' };
  }

  private hook(phase: GuestPhase, log: TaskLog = this.ctx.log): Promise<void> {
    return runHook(this.ctx.job.hook, [phase, 'stop', this.vmid], this.env, log);
  }

  async execute(): Promise<{ bytes: number; logicalBytes: number; version: number; wire?: { sentBytes: number; receivedBytes: number } }> {
    const { ctx, vmid } = this;
    const lock = await ctx.locks.acquire(`guest-${vmid}`, `job ${ctx.job.id} (task ${ctx.taskId})`, ctx.job.lockWait * 60_000);
    let published = false;
    let reads: readonly DiskReadReport[] = [];
    try {
      const status = await this.prepare();
      const readOff = status === 'running' || status === 'stopped'; // the disks are read with the guest off
      const result = await backupGuest({
        target: ctx.target,
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
        encryption: ctx.encryption,
        beforeArchive: (log, disks) => this.freeze(status, disks, log),
        beforePublish: (log) => this.beforePublish(readOff, log),
        downtime: () => this.clock.report(),
        afterArchive: async (_m, dir, log, diskReads) => {
          published = true;
          reads = diskReads;
          this.env.TARGET = dir;
          this.env.LOGFILE = `${dir}/backup.log`;
          await this.hook('backup-end', log);
          if (this.startFailure !== undefined) throw this.startFailure;
        },
      });
      const logicalBytes = result.manifest.disks.reduce((sum, d) => sum + d.size, 0);
      return { bytes: result.manifest.storedBytes, logicalBytes, version: result.manifest.version, wire: result.wire };
    } catch (err) {
      await this.hook('backup-abort').catch(() => undefined);
      throw err;
    } finally {
      if (this.stopped) await this.restart(ctx.log).catch((err: unknown) => ctx.log.error(`starting guest ${vmid} again failed - ${describeError(err)}`));
      this.clock.logUnreported(vmid, ctx.log);
      const datastoreId = ctx.target.datastoreId;
      await this.snapshots?.settleAfterRun(published, ctx.log, datastoreId === undefined ? undefined : { datastoreId, reads });
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

  /**
   * Before the disks are read: the guest is shut down (if it runs); while it is off, its disks are
   * snapshotted (job `snapshot: auto`), and then it is started at once and the snapshots are read.
   * No snapshots (refused, or off): the disks are read, with the guest off.
   */
  private async freeze(
    status: GuestRunState,
    disks: ReadonlyArray<{ key: string; path: string }>,
    log: TaskLog,
  ): Promise<ReadonlyMap<string, DiskReadPlan> | undefined> {
    if (status === 'running') await this.stopGuest(log);
    if (status !== 'running' && status !== 'stopped') return undefined; // paused, unknown: not off, never snapshotted
    if (this.ctx.job.snapshot === 'off') return undefined;
    this.snapshots = await snapshotGuestDisks(this.vmid, disks, this.ctx.storages, log, (work) => this.clock.time('snapshot', work));
    if (!this.snapshots) return undefined;
    await this.checkStillOff(log, 'while its disks were snapshotted', 'snapshotting the disks');
    if (this.stopped) await this.startAgain(log);
    return this.snapshots.readPlans(this.ctx.target.datastoreId);
  }

  /** Without snapshots, the guest stayed off for the read: it must still be off, and is started now, before the publish. */
  private async beforePublish(readOff: boolean, log: TaskLog): Promise<void> {
    if (this.snapshots) return; // the snapshots were read: the guest runs by design
    if (readOff) await this.checkStillOff(log, 'while its disks were being read', 'reading the disks');
    if (this.stopped) await this.startAgain(log);
  }

  /** The guest must still be off; else what was read or snapshotted is discarded. */
  private async checkStillOff(log: TaskLog, during: string, after: string): Promise<void> {
    try {
      await checkStillStopped(this.ctx.driver, this.vmid, { during, outcome: 'this version is discarded' });
    } catch (err) {
      if (isColdvaultError(err, 'GUEST_STARTED') && this.stopped) this.leaveRunning(log);
      throw err;
    }
    log.info(`status after ${after} = stopped`);
  }

  /** Starts the guest once its disks are frozen (snapshotted or read); a failure fails the run only after the publish. */
  private async startAgain(log: TaskLog): Promise<void> {
    try {
      await this.restart(log);
    } catch (err) {
      this.startFailure = asError(err);
      log.error(`${describeError(err)}; the backup goes on and this guest's run fails at its end`);
    }
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
      await this.clock.time('shutdown', () => ctx.driver.shutdown(vmid, ctx.job.stopTimeout * 1000, { log }));
    } catch (err) {
      if (!isColdvaultError(err, 'STOP_TIMEOUT') || !ctx.job.forceStop) {
        if ((await ctx.driver.status(vmid).catch(() => 'unknown')) === 'running') ctx.journal.clearStop(vmid, ctx.taskId);
        else this.stopped = true;
        throw err;
      }
      log.warn(`${describeError(err)}; stopping it hard (forceStop)`);
      await this.clock.time('shutdown', () => ctx.driver.stop(vmid));
    }
    this.stopped = true;
  }

  /**
   * pre-restart -> start -> post-restart. A failing pre-restart hook does not keep the guest off: it
   * is started all the same, and the hook's failure is thrown once it runs.
   */
  private async restart(log: TaskLog): Promise<void> {
    const { ctx, vmid } = this;
    const begin = Date.now();
    const hookFailure = await this.hook('pre-restart', log).then(
      () => undefined,
      (err: unknown) => asError(err),
    );
    this.stopped = false;
    log.info('restarting vm');
    try {
      await this.clock.time('start', () => ctx.driver.start(vmid));
    } catch (err) {
      this.stopped = true;
      throw new ColdvaultError('START_FAILED', `guest ${vmid} did not start again: ${describeError(err)}`, { cause: err });
    }
    ctx.journal.clearStop(vmid, ctx.taskId);
    log.info(`guest is online again after ${Math.round((Date.now() - begin) / 1000)} seconds`);
    if (hookFailure !== undefined) throw hookFailure;
    await this.hook('post-restart', log);
  }
}

/** A pushed version's bytes on the wire, for the report (none for a local one). */
function wireFields(wire: { sentBytes: number; receivedBytes: number } | undefined): Pick<GuestReport, 'wireBytes'> {
  return wire ? { wireBytes: wire.sentBytes + wire.receivedBytes } : {};
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(describeError(err));
}
