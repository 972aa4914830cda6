/**
 * The scheduler of `coldvault serve`: each tick (every 15 s by default) it asks, for every enabled
 * job, whether a run of its schedule (schedule/: calendar event, cron, or weekdays + time, in the
 * node's local time, daylight-saving changes included) has come since the job's last scheduled run,
 * and starts it. A job never runs twice at once (a run still going when the next is due is skipped
 * and logged), and a scheduled run is started once only (`job_runs` remembers the last one, across
 * restarts). A run missed while the service was down is started once at start-up if it lies within
 * the grace period (default 1 h); older ones are logged as missed. Every decision goes to the
 * scheduler's log. The clock is injectable, so tests drive time.
 */
import { describeError, type TaskLog } from '../core/index.js';
import type { Job } from './job-model.js';
import { lastRunBefore, nextRun, parseSchedule, type Schedule, weeklySpec } from './schedule/index.js';
import type { JobStore } from './job-store.js';
import type { StateDb } from './state-db.js';

export interface SchedulerOptions {
  db: StateDb;
  jobs: JobStore;
  /** starts a run; resolves when it ends */
  run: (job: Job, scheduledFor: Date) => Promise<unknown>;
  log: TaskLog;
  now?: () => Date;
  graceMinutes?: number;
  tickMs?: number;
}

/** The job's schedule: its `schedule` (calendar event or cron), else its weekdays + time; none: run by hand. */
export function scheduleOf(job: Job): Schedule | undefined {
  if (job.schedule) return parseSchedule(job.schedule);
  return job.days.length > 0 ? weeklySpec(job.days, job.at) : undefined;
}

/** When the scheduler starts the job next (local time zone), after `after`; undefined: disabled or unscheduled. */
export function nextRunOfJob(job: Job, after: Date): Date | undefined {
  const schedule = job.enabled ? scheduleOf(job) : undefined;
  return schedule && nextRun(schedule, after);
}

export class Scheduler {
  private readonly running = new Map<string, Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => Date;
  private readonly graceMs: number;

  constructor(private readonly opts: SchedulerOptions) {
    this.now = opts.now ?? (() => new Date());
    this.graceMs = (opts.graceMinutes ?? 60) * 60_000;
  }

  start(): void {
    this.tick(true);
    this.timer = setInterval(() => this.tick(false), this.opts.tickMs ?? 15_000);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled([...this.running.values()]);
  }

  /** One look at every job; `startup` applies the grace period to runs missed while down. */
  tick(startup = false): void {
    const now = this.now();
    let jobs: Job[];
    try {
      jobs = this.opts.jobs.list();
    } catch (err) {
      this.opts.log.error(`scheduler: reading jobs failed - ${describeError(err)}`);
      return;
    }
    for (const job of jobs) if (job.enabled) this.consider(job, now, startup);
  }

  /** Runs still going (for tests and shutdown). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  private consider(job: Job, now: Date, startup: boolean): void {
    const spec = scheduleOf(job);
    if (!spec) return;
    const due = lastRunBefore(spec, now, this.firstEligible(job.id, now, startup));
    if (!due) return;
    this.remember(job.id, due);
    if (now.getTime() - due.getTime() > this.graceMs) {
      this.opts.log.warn(`scheduler: job ${job.id} missed its run of ${due.toISOString()} (more than the grace period ago); waiting for the next one`);
      return;
    }
    if (this.running.has(job.id)) {
      this.opts.log.warn(`scheduler: job ${job.id} is due (${due.toISOString()}) but its previous run is still going; skipped`);
      return;
    }
    const late = now.getTime() - due.getTime() > 60_000;
    this.opts.log.info(`scheduler: starting job ${job.id} for ${due.toISOString()}${late ? ' (missed while the service was down)' : ''}`);
    const run = this.opts
      .run(job, due)
      .catch((err: unknown) => this.opts.log.error(`scheduler: job ${job.id} failed to run - ${describeError(err)}`))
      .finally(() => this.running.delete(job.id));
    this.running.set(job.id, run);
  }

  private lastScheduled(jobId: string): Date | undefined {
    const row = this.opts.db.prepare('SELECT last_scheduled FROM job_runs WHERE job_id = ?').get(jobId) as { last_scheduled: string } | undefined;
    return row ? new Date(row.last_scheduled) : undefined;
  }

  /**
   * The earliest run that may still be started: one after the last scheduled run; without one, one
   * in the current or the previous minute (at start-up: the whole grace period); never one before
   * the job was created.
   */
  private firstEligible(jobId: string, now: Date, startup: boolean): Date {
    const last = this.lastScheduled(jobId);
    if (last) return new Date(last.getTime() + 1);
    const minute = Math.floor(now.getTime() / 60_000) * 60_000;
    const window = startup ? now.getTime() - this.graceMs : minute - 60_000;
    const createdMinute = Math.ceil(this.createdAt(jobId).getTime() / 60_000) * 60_000;
    return new Date(Math.max(window, createdMinute));
  }

  /** A job is never due for a minute before it existed. */
  private createdAt(jobId: string): Date {
    const row = this.opts.db.prepare('SELECT created FROM jobs WHERE id = ?').get(jobId) as { created: string } | undefined;
    return row ? new Date(row.created) : new Date(0);
  }

  private remember(jobId: string, due: Date): void {
    this.opts.db
      .prepare('INSERT INTO job_runs (job_id, last_scheduled) VALUES (?, ?) ON CONFLICT(job_id) DO UPDATE SET last_scheduled = excluded.last_scheduled')
      .run(jobId, due.toISOString());
  }
}
