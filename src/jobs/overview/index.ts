/**
 * overview: the operator's view of a node (GET /api/v1/overview, the web UI's landing page, the
 * dashboard's guest table), computed from what is already recorded: the catalogs' versions (times,
 * sizes, downtime, verify and boot test state), the task store's job runs and their per-guest
 * reports, the task logs' lines naming external disks, and the jobs' schedules as the scheduler reads
 * them. Everything but sources.ts is pure (data in, data out) and unit-tested alone.
 *
 * - guest-state.ts: a row per guest: last backup, next run, versions, verify state, flags
 *   (not-backed-up, failed, overdue, verify-failed, boot-test-failed)
 * - usage.ts + forecast.ts: a store's stored bytes per day and its "full on" day (least squares)
 * - runs.ts: job runs (duration, throughput, downtime, result) and per-guest attempts
 * - rotation.ts: which external disk each run used, by day
 * - schedule.ts: next and latest expected run of a job, through the scheduler's own functions
 * - days.ts: local calendar days `YYYY-MM-DD`
 */
export { buildOverview, type DatastoreOverview, type Overview, type OverviewInputs, type StoreFacts } from './overview.js';
export { coversGuest, type GuestFlag, type GuestRef, type GuestState, type JobRef, type LastBackup, type VersionRef } from './guest-state.js';
export { dailyUsage, type StoredVersion } from './usage.js';
export {
  FORECAST_MAX_DAYS,
  FORECAST_MIN_DAYS,
  FORECAST_WINDOW_DAYS,
  forecastFullOn,
  FULL_ON_METHOD,
  leastSquares,
  type DayPoint,
  type Forecast,
} from './forecast.js';
export { guestAttempts, jobRuns, type GuestAttempt, type JobRun } from './runs.js';
export { rotationEntries, type LogLineRef, type RotationEntry } from './rotation.js';
export { expectedRunOf, nextRunOf, OVERDUE_SLACK_MS } from './schedule.js';
export { dayKey, dayNumber, dayOfNumber, daysFrom } from './days.js';
export { deviceLogLines, jobCreatedTimes } from './sources.js';
