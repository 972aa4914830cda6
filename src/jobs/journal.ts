/**
 * The restart journal: what coldvault has done to a guest that must be undone if it dies. One row per
 * (guest, task) in the state database, with two marks, each written BEFORE the act it records:
 * - `stopped`: coldvault shuts the guest down (cleared once it runs again);
 * - `locked`: coldvault sets the hypervisor's backup lock (Proxmox `lock: backup`; cleared once removed).
 * The row goes when both marks are clear. If coldvault dies in between, the row stays; the next
 * `coldvault serve` or job run takes every row whose recording process is gone, removes the backup
 * lock (only a lock that still says `backup`) and starts the guest, and logs it. So a guest that
 * coldvault stopped always comes back, and a lock coldvault set is never left behind.
 */
import { describeError, type HypervisorDriver, isColdvaultError, type TaskLog } from '../core/index.js';
import { holderAlive, thisBoot, thisHost } from '../datastore/index.js';
import type { StateDb } from './state-db.js';

export interface JournalEntry {
  vmid: string;
  taskId: string;
  pid: number;
  host: string;
  /** the host's boot the row was written in (null in rows older than this field): after a reboot the pid means nothing */
  boot: string | null;
  /** when the row was first written (the stop or the lock, whichever came first) */
  recordedAt: string;
  /** coldvault (may have) shut the guest down and not yet started it again */
  stopped: boolean;
  /** coldvault (may have) set the hypervisor's backup lock and not yet removed it */
  locked: boolean;
}

type Mark = 'stopped' | 'locked';

interface JournalRow {
  vmid: string;
  task_id: string;
  pid: number;
  host: string;
  boot: string | null;
  stopped_at: string;
  stopped: number;
  locked: number;
}

export class StopJournal {
  constructor(private readonly db: StateDb) {
    addMarkColumns(db);
  }

  /** Before a shutdown. */
  recordStop(vmid: string, taskId: string): void {
    this.mark(vmid, taskId, 'stopped');
  }

  /** Once the guest runs again (or is known to run). */
  clearStop(vmid: string, taskId: string): void {
    this.unmark(vmid, taskId, 'stopped');
  }

  /** Before setting the hypervisor's backup lock. */
  recordLock(vmid: string, taskId: string): void {
    this.mark(vmid, taskId, 'locked');
  }

  /** Once the lock is removed (or known not to be coldvault's). */
  clearLock(vmid: string, taskId: string): void {
    this.unmark(vmid, taskId, 'locked');
  }

  /** Drops the whole row. */
  clear(vmid: string, taskId: string): void {
    this.db.prepare('DELETE FROM journal WHERE vmid = ? AND task_id = ?').run(vmid, taskId);
  }

  entries(): JournalEntry[] {
    const rows = this.db.prepare('SELECT vmid, task_id, pid, host, boot, stopped_at, stopped, locked FROM journal ORDER BY stopped_at').all() as JournalRow[];
    return rows.map((r) => ({
      vmid: r.vmid,
      taskId: r.task_id,
      pid: r.pid,
      host: r.host,
      boot: r.boot,
      recordedAt: r.stopped_at,
      stopped: r.stopped === 1,
      locked: r.locked === 1,
    }));
  }

  /** Entries left by processes that died (on this host). */
  orphans(): JournalEntry[] {
    return this.entries().filter((e) => e.host === thisHost && !holderAlive({ ...e, boot: e.boot ?? undefined }));
  }

  /**
   * Undoes what interrupted runs left: removes their backup locks, then starts the guests they left
   * stopped, except those in `keepStopped` (the caller's job backs them up as they are and starts them
   * afterwards); returns how many were started. What fails stays in the journal (the next attempt
   * tries again) and is logged as an error.
   */
  async recover(driver: HypervisorDriver, log: TaskLog, keepStopped: Set<string> = new Set()): Promise<number> {
    let started = 0;
    for (const e of this.orphans()) {
      if (e.locked && !(await this.recoverLock(driver, log, e))) continue;
      if (e.stopped && !keepStopped.has(e.vmid) && (await this.recoverStop(driver, log, e))) started++;
    }
    return started;
  }

  private async recoverLock(driver: HypervisorDriver, log: TaskLog, e: JournalEntry): Promise<boolean> {
    log.warn(`guest ${e.vmid} was locked for backup by task ${e.taskId} (pid ${e.pid}) at ${e.recordedAt}, which did not finish; removing the lock`);
    try {
      await driver.unlockBackup?.(e.vmid);
      log.info(`guest ${e.vmid} is unlocked`);
    } catch (err) {
      log.error(`removing the backup lock of guest ${e.vmid} failed - ${describeError(err)}`);
      if (!isColdvaultError(err, 'GUEST_LOCKED')) return false; // another lock is not ours to remove: nothing to retry
    }
    this.clearLock(e.vmid, e.taskId);
    return true;
  }

  private async recoverStop(driver: HypervisorDriver, log: TaskLog, e: JournalEntry): Promise<boolean> {
    log.warn(`guest ${e.vmid} was stopped by task ${e.taskId} (pid ${e.pid}) at ${e.recordedAt}, which did not finish; starting it again`);
    try {
      if ((await driver.status(e.vmid)) !== 'running') await driver.start(e.vmid);
      this.clearStop(e.vmid, e.taskId);
      log.info(`guest ${e.vmid} is running again`);
      return true;
    } catch (err) {
      log.error(`starting guest ${e.vmid} failed - ${describeError(err)}`);
      return false;
    }
  }

  private mark(vmid: string, taskId: string, mark: Mark): void {
    this.db
      .prepare(
        `INSERT INTO journal (vmid, task_id, pid, host, boot, stopped_at, stopped, locked) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (vmid, task_id) DO UPDATE SET ${mark} = 1`,
      )
      .run(vmid, taskId, process.pid, thisHost, thisBoot ?? null, new Date().toISOString(), mark === 'stopped' ? 1 : 0, mark === 'locked' ? 1 : 0);
  }

  private unmark(vmid: string, taskId: string, mark: Mark): void {
    this.db
      .transaction(() => {
        this.db.prepare(`UPDATE journal SET ${mark} = 0 WHERE vmid = ? AND task_id = ?`).run(vmid, taskId);
        this.db.prepare('DELETE FROM journal WHERE vmid = ? AND task_id = ? AND stopped = 0 AND locked = 0').run(vmid, taskId);
      })
      .immediate();
  }
}

/**
 * The `stopped` and `locked` columns, added to a journal table of an older state database (whose
 * rows all record stops). Here rather than in state-db.ts: they are the journal's own business.
 */
/** Columns newer than the first journal table: the two marks, and the boot id (rows of an older table are stops). */
const ADDED_COLUMNS: ReadonlyArray<[string, string]> = [
  ['stopped', 'stopped INTEGER NOT NULL DEFAULT 1'],
  ['locked', 'locked INTEGER NOT NULL DEFAULT 0'],
  ['boot', 'boot TEXT'],
];

function addMarkColumns(db: StateDb): void {
  const missing = (): Array<[string, string]> => {
    const have = new Set((db.prepare("SELECT name FROM pragma_table_info('journal')").all() as Array<{ name: string }>).map((c) => c.name));
    return ADDED_COLUMNS.filter(([name]) => !have.has(name));
  };
  if (missing().length === 0) return;
  db.transaction(() => {
    for (const [, ddl] of missing()) db.exec(`ALTER TABLE journal ADD COLUMN ${ddl}`); // again inside the lock: another process may have been first
  }).immediate();
}
