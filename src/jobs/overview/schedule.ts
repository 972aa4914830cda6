/**
 * What a job's schedule says about now, through the scheduler's own functions (scheduleOf, nextRun,
 * lastRunBefore), so the overview reads schedules exactly as `coldvault serve` runs them: the next
 * run after now, and the latest run that should have happened by now.
 */
import { lastRunBefore, nextRun } from '../schedule/index.js';
import type { Job } from '../job-model.js';
import { scheduleOf } from '../scheduler.js';

/** A run that started this long after its scheduled minute (or later) may still be going: it is not yet expected to have made a version. */
export const OVERDUE_SLACK_MS = 6 * 3_600_000;
/** How far back the latest scheduled run is looked for. */
const LOOK_BACK_MS = 40 * 86_400_000;

/** The job's next scheduled run after `now`; undefined when it has no schedule (or none within a year). */
export function nextRunOf(job: Job, now: Date): Date | undefined {
  const spec = scheduleOf(job);
  return spec ? nextRun(spec, now) : undefined;
}

/**
 * The latest scheduled run that should have made its versions by `now`: at or before now - slack,
 * not before the job existed (`created`), nor more than 40 days back; undefined when there is none.
 */
export function expectedRunOf(job: Job, now: Date, created: Date | undefined): Date | undefined {
  const spec = scheduleOf(job);
  if (!spec) return undefined;
  const notBefore = Math.max(now.getTime() - LOOK_BACK_MS, created?.getTime() ?? 0);
  return lastRunBefore(spec, new Date(now.getTime() - OVERDUE_SLACK_MS), new Date(notBefore));
}
