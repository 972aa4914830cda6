/**
 * The stop journal: before coldvault shuts a guest down it records (vmid, task, pid, host) in the
 * state database, and removes the record once the guest runs again. If coldvault dies in between,
 * the record stays; the next `coldvault serve` or job run starts every guest whose recording process
 * is gone, and logs it. So a guest that coldvault stopped always comes back.
 */
import { describeError } from '../core/errors.js';
import type { HypervisorDriver } from '../core/hypervisor.js';
import type { TaskLog } from '../core/log.js';
import { holderAlive, thisHost } from '../datastore/pid.js';
import type { StateDb } from './state-db.js';

export interface JournalEntry {
  vmid: string;
  taskId: string;
  pid: number;
  host: string;
  stoppedAt: string;
}

export class StopJournal {
  constructor(private readonly db: StateDb) {}

  record(vmid: string, taskId: string): void {
    this.db.prepare('INSERT OR REPLACE INTO journal (vmid, task_id, pid, host, stopped_at) VALUES (?, ?, ?, ?, ?)')
      .run(vmid, taskId, process.pid, thisHost, new Date().toISOString());
  }

  clear(vmid: string, taskId: string): void {
    this.db.prepare('DELETE FROM journal WHERE vmid = ? AND task_id = ?').run(vmid, taskId);
  }

  entries(): JournalEntry[] {
    const rows = this.db.prepare('SELECT vmid, task_id, pid, host, stopped_at FROM journal ORDER BY stopped_at').all() as Array<{ vmid: string; task_id: string; pid: number; host: string; stopped_at: string }>;
    return rows.map((r) => ({ vmid: r.vmid, taskId: r.task_id, pid: r.pid, host: r.host, stoppedAt: r.stopped_at }));
  }

  /** Entries left by processes that died (on this host). */
  orphans(): JournalEntry[] {
    return this.entries().filter((e) => e.host === thisHost && !holderAlive(e));
  }

  /**
   * Starts every guest an interrupted run left stopped; returns how many were started. A guest that
   * fails to start stays in the journal (the next attempt tries again) and is logged as an error.
   */
  async recover(driver: HypervisorDriver, log: TaskLog, except: Set<string> = new Set()): Promise<number> {
    let started = 0;
    for (const e of this.orphans().filter((o) => !except.has(o.vmid))) {
      log.warn(`guest ${e.vmid} was stopped by task ${e.taskId} (pid ${e.pid}) at ${e.stoppedAt}, which did not finish; starting it again`);
      try {
        if ((await driver.status(e.vmid)) !== 'running') await driver.start(e.vmid);
        this.clear(e.vmid, e.taskId);
        log.info(`guest ${e.vmid} is running again`);
        started++;
      } catch (err) {
        log.error(`starting guest ${e.vmid} failed - ${describeError(err)}`);
      }
    }
    return started;
  }
}
