/**
 * The whole overview from what the server gathered (guests, every store's versions and space, jobs,
 * tasks, device log lines): pure, so it is tested without a server. The API answers it as it is
 * (GET /api/v1/overview; the schema in server/schemas.ts says what each field means).
 */
import type { TaskInfo } from '../task-store.js';
import { forecastFullOn, FULL_ON_METHOD, type DayPoint } from './forecast.js';
import { guestState, type GuestRef, type GuestState, type JobRef, type VersionRef } from './guest-state.js';
import { rotationEntries, type LogLineRef, type RotationEntry } from './rotation.js';
import { guestAttempts, jobRuns, type JobRun } from './runs.js';
import { dailyUsage } from './usage.js';

/** What the server knows of one store. */
export interface StoreFacts {
  name: string;
  dir: string;
  kind?: 's3';
  /** bytes used on the filesystem (S3: the versions' stored bytes); null when the store did not open */
  usedBytes: number | null;
  /** bytes free for the datastore; null for S3 or when the store did not open */
  freeBytes: number | null;
  totalBytes: number | null;
  /** the catalog's totals over the versions in the store */
  logicalBytes: number;
  storedBytes: number;
  versions: readonly VersionRef[];
  /** why the store could not be read */
  error?: string;
  /** a job's external-disk folder with no disk attached (the error says which disks) */
  detached?: boolean;
}

export interface OverviewInputs {
  now: Date;
  node: string;
  guests: readonly GuestRef[];
  stores: readonly StoreFacts[];
  jobs: readonly JobRef[];
  /** the task store's newest tasks */
  tasks: readonly TaskInfo[];
  deviceLines: readonly LogLineRef[];
  /** days of run history and rotation */
  historyDays: number;
}

/** A store as the overview answers it: its facts, with the count of its versions and what is drawn from them. */
export interface DatastoreOverview extends Omit<StoreFacts, 'versions'> {
  versions: number;
  dedupFactor: number | null;
  usage: DayPoint[];
  fullOn: string | null;
  fullOnMethod: string;
  trendBytesPerDay: number | null;
}

export interface Overview {
  generatedAt: string;
  node: string;
  guests: GuestState[];
  datastores: DatastoreOverview[];
  history: { days: number; since: string; jobs: Array<{ id: string; runs: JobRun[] }> };
  rotation: RotationEntry[];
}

const DAY_MS = 86_400_000;

export function buildOverview(input: OverviewInputs): Overview {
  const since = new Date(input.now.getTime() - input.historyDays * DAY_MS);
  const versions = input.stores.flatMap((s) => s.versions);
  const attempts = guestAttempts(input.tasks);
  const guests = input.guests.map((g) => guestState(g, { node: input.node, now: input.now, versions, attempts, jobs: input.jobs }));
  const runs = jobRuns(input.tasks, since);
  const jobIds = [...new Set([...input.jobs.map((j) => j.job.id), ...runs.keys()])].sort();
  const jobOfTask = new Map(input.tasks.filter((t) => t.jobId !== null).map((t) => [t.id, t.jobId as string]));
  return {
    generatedAt: input.now.toISOString(),
    node: input.node,
    guests,
    datastores: input.stores.map((s) => datastoreOverview(s, input.now)),
    history: { days: input.historyDays, since: since.toISOString(), jobs: jobIds.map((id) => ({ id, runs: runs.get(id) ?? [] })) },
    rotation: rotationEntries(input.deviceLines, jobOfTask, since),
  };
}

function datastoreOverview(s: StoreFacts, now: Date): DatastoreOverview {
  const usage = dailyUsage(s.versions, now);
  const forecast = forecastFullOn(usage, s.freeBytes);
  return {
    name: s.name,
    dir: s.dir,
    ...(s.kind ? { kind: s.kind } : {}),
    usedBytes: s.usedBytes,
    freeBytes: s.freeBytes,
    totalBytes: s.totalBytes,
    logicalBytes: s.logicalBytes,
    storedBytes: s.storedBytes,
    versions: s.versions.length,
    dedupFactor: s.storedBytes > 0 ? s.logicalBytes / s.storedBytes : null,
    usage,
    fullOn: forecast.fullOn,
    fullOnMethod: FULL_ON_METHOD,
    trendBytesPerDay: forecast.bytesPerDay,
    ...(s.error === undefined ? {} : { error: s.error }),
    ...(s.detached ? { detached: true } : {}),
  };
}
