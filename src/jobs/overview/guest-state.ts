/**
 * One row per guest for the overview: its last backup, next scheduled run, versions, the newest
 * version's verify state, days since the last good backup, and flags.
 *
 * - Last backup: the newest of (a) the newest version in any store (its time is the guest's backup
 *   start; duration from the job run that made it, when one did) and (b) the guest's newest attempt in
 *   a job run (runs.ts), when that started after the version's time: a failed run, or a run whose
 *   version this node cannot see (a cluster-mode push to another node).
 * - Last good backup: the newest version, or the start of the newest run that backed the guest up.
 * - Flags: `not-backed-up` no enabled backup job covers the guest; `failed` its last backup failed;
 *   `overdue` a covering job's latest scheduled run that should have finished by now (schedule.ts:
 *   at least OVERDUE_SLACK_MS ago, after the job was made) did not back it up: no version in the job's
 *   store and no good run of that job since that run's minute; `verify-failed` / `boot-test-failed`
 *   the newest version failed its last verify / boot test.
 */
import type { Job } from '../job-model.js';
import type { GuestAttempt } from './runs.js';
import { expectedRunOf, nextRunOf } from './schedule.js';

export type GuestFlag = 'not-backed-up' | 'failed' | 'overdue' | 'verify-failed' | 'boot-test-failed';
export type VerifiedState = 'ok' | 'failed' | 'incomplete' | 'never';

export interface GuestRef {
  id: string;
  name: string;
}

export interface VersionRef {
  guestId: string;
  /** the store's name (a configured name, `job:<id>`, an S3 datastore's name) */
  store: string;
  version: number;
  /** ISO 8601: when the guest's backup started */
  time: string;
  logicalBytes: number;
  newBytes: number;
  storedBytes: number;
  downtimeMs: number | null;
  verifyState: string;
  /** the last boot test passed (true), failed (false) or never ran (null) */
  bootTestOk: boolean | null;
}

export interface JobRef {
  job: Job;
  /** when the job was made (no run is expected before) */
  created?: Date;
  /** the name of the store its versions land in here, as VersionRef.store; undefined: not on this node (cluster mode) */
  storeName?: string;
}

export interface LastBackup {
  time: string;
  result: 'ok' | 'failed';
  durationMs: number | null;
  downtimeMs: number | null;
  newBytes: number | null;
  logicalBytes: number | null;
  storedBytes: number | null;
  job: string | null;
  version: number | null;
  store: string | null;
  error: string | null;
}

export interface GuestState {
  id: string;
  name: string;
  node: string;
  covered: boolean;
  coveringJobs: string[];
  lastBackup: LastBackup | null;
  lastGood: string | null;
  nextRun: { time: string; job: string } | null;
  versions: number;
  verified: VerifiedState;
  bootTest: 'ok' | 'failed' | null;
  daysSinceGood: number | null;
  flags: GuestFlag[];
}

export interface GuestInputs {
  node: string;
  now: Date;
  versions: readonly VersionRef[];
  attempts: readonly GuestAttempt[];
  jobs: readonly JobRef[];
}

const DAY_MS = 86_400_000;
const ms = (iso: string): number => Date.parse(iso);

/** Whether an enabled backup job backs the guest up (its id list, or all guests but the excluded). */
export function coversGuest(job: Job, guestId: string): boolean {
  if (!job.enabled || job.kind === 'sync') return false;
  return job.all ? !job.exclude.includes(guestId) : job.vmid.includes(guestId);
}

export function guestState(guest: GuestRef, inputs: GuestInputs): GuestState {
  const versions = inputs.versions.filter((v) => v.guestId === guest.id).sort((a, b) => ms(a.time) - ms(b.time));
  const attempts = inputs.attempts.filter((a) => a.vmid === guest.id).sort((a, b) => ms(a.start) - ms(b.start));
  const covering = inputs.jobs.filter((j) => coversGuest(j.job, guest.id));
  const newest = versions.at(-1);
  const lastGood = maxTime([newest?.time, attempts.filter((a) => a.ok).at(-1)?.start]);
  const lastBackup = lastBackupOf(newest, attempts);
  const flags: GuestFlag[] = [];
  if (covering.length === 0) flags.push('not-backed-up');
  if (lastBackup?.result === 'failed') flags.push('failed');
  if (covering.some((j) => isOverdue(j, guest.id, versions, attempts, inputs.now))) flags.push('overdue');
  const verified = verifiedState(newest?.verifyState);
  if (verified === 'failed') flags.push('verify-failed');
  const bootTest = newest?.bootTestOk === undefined || newest.bootTestOk === null ? null : newest.bootTestOk ? 'ok' : 'failed';
  if (bootTest === 'failed') flags.push('boot-test-failed');
  return {
    id: guest.id,
    name: guest.name,
    node: inputs.node,
    covered: covering.length > 0,
    coveringJobs: covering.map((j) => j.job.id),
    lastBackup,
    lastGood,
    nextRun: nextRunAmong(covering, inputs.now),
    versions: versions.length,
    verified,
    bootTest,
    daysSinceGood: lastGood === null ? null : Math.floor((inputs.now.getTime() - ms(lastGood)) / DAY_MS),
    flags,
  };
}

function lastBackupOf(newest: VersionRef | undefined, attempts: readonly GuestAttempt[]): LastBackup | null {
  const latest = attempts.at(-1);
  if (latest && (!newest || ms(latest.start) > ms(newest.time))) return fromAttempt(latest);
  if (!newest) return null;
  // the run that made the version: same version number, started before it, within a day
  const maker = attempts.find((a) => a.ok && a.version === newest.version && ms(a.start) <= ms(newest.time) && ms(newest.time) - ms(a.start) < DAY_MS);
  return {
    time: newest.time,
    result: 'ok',
    durationMs: maker?.durationMs ?? null,
    downtimeMs: newest.downtimeMs ?? maker?.downtimeMs ?? null,
    newBytes: newest.newBytes,
    logicalBytes: newest.logicalBytes,
    storedBytes: newest.storedBytes,
    job: maker?.jobId ?? null,
    version: newest.version,
    store: newest.store,
    error: null,
  };
}

function fromAttempt(a: GuestAttempt): LastBackup {
  return {
    time: a.start,
    result: a.ok ? 'ok' : 'failed',
    durationMs: a.durationMs,
    downtimeMs: a.downtimeMs,
    newBytes: null,
    logicalBytes: a.logicalBytes,
    storedBytes: a.storedBytes,
    job: a.jobId,
    version: a.version,
    store: null,
    error: a.error,
  };
}

function isOverdue(ref: JobRef, guestId: string, versions: readonly VersionRef[], attempts: readonly GuestAttempt[], now: Date): boolean {
  const expected = expectedRunOf(ref.job, now, ref.created);
  if (!expected) return false;
  const inStore = ref.storeName === undefined ? [] : versions.filter((v) => v.store === ref.storeName).map((v) => v.time);
  const goodRuns = attempts.filter((a) => a.ok && a.jobId === ref.job.id).map((a) => a.start);
  const good = maxTime([...inStore, ...goodRuns]);
  return good === null || ms(good) < expected.getTime();
}

function nextRunAmong(jobs: readonly JobRef[], now: Date): { time: string; job: string } | null {
  let best: { time: Date; job: string } | undefined;
  for (const { job } of jobs) {
    const next = nextRunOf(job, now);
    if (next && (!best || next < best.time)) best = { time: next, job: job.id };
  }
  return best ? { time: best.time.toISOString(), job: best.job } : null;
}

function verifiedState(state: string | undefined): VerifiedState {
  return state === 'ok' || state === 'failed' || state === 'incomplete' ? state : 'never';
}

function maxTime(times: ReadonlyArray<string | undefined>): string | null {
  let best: string | null = null;
  for (const t of times) if (t !== undefined && !Number.isNaN(ms(t)) && (best === null || ms(t) > ms(best))) best = t;
  return best;
}
