/**
 * A job's boot tests (job `bootTest: true`): once the job's guests are backed up, each new version is
 * booted in isolation (pipeline/boot-test), one after the other and within the host's bound on boot
 * tests at once (config `bootTest.maxConcurrent`). A failed or impossible boot test never fails the
 * backup: it is logged as an error, recorded in the catalog, and put in the guest's report (task
 * result, mail). A run aborted meanwhile skips the rest.
 */
import type { Catalog } from '../catalog/index.js';
import { describeError, type TaskLog } from '../core/index.js';
import type { VersionKey } from '../format/index.js';
import { DEFAULT_EXPECT, runBootTest, type SourceRef, type WorkerPool } from '../pipeline/index.js';
import type { Job } from './job-model.js';
import type { GuestReport } from './mail.js';

export const DEFAULT_JOB_BOOT_TIMEOUT_SECONDS = 300;

/** The host's boot test settings (config `bootTest`). */
export interface BootTestSettings {
  accel?: string;
  maxConcurrent?: number;
}

/** Where a job's versions can be booted from: its datastore (a folder or an S3 bucket) and catalog. */
export interface BootSource {
  source: SourceRef;
  catalog: Catalog;
  /** the datastore's id: names the screenshots' folder */
  storeName: string;
}

export interface JobBootTests {
  job: Job;
  from: BootSource;
  pool: WorkerPool;
  stateDir: string;
  settings?: BootTestSettings;
  key?: VersionKey;
  log: TaskLog;
  abort?: AbortSignal;
}

export async function bootTestReports(req: JobBootTests, reports: GuestReport[]): Promise<void> {
  for (const report of reports) {
    if (report.status !== 'ok' || report.version === undefined) continue;
    if (req.abort?.aborted) {
      req.log.error(`job aborted: no boot test of guest ${report.vmid} version ${report.version}`);
      continue;
    }
    report.bootTest = await bootOne(req, report.vmid, report.version);
  }
}

async function bootOne(req: JobBootTests, vmid: string, version: number): Promise<NonNullable<GuestReport['bootTest']>> {
  req.log.info(`boot test of guest ${vmid} version ${version}`);
  try {
    const outcome = await runBootTest({
      ...{ ...req.from.source, pool: req.pool, guestId: vmid, version, key: req.key, stateDir: req.stateDir, storeName: req.from.storeName },
      ...{ catalog: req.from.catalog, log: req.log, abort: req.abort, accel: req.settings?.accel, maxConcurrent: req.settings?.maxConcurrent },
      signal: { kind: 'serial', expect: req.job.bootTestExpect ?? DEFAULT_EXPECT },
      timeoutSeconds: req.job.bootTestTimeout ?? DEFAULT_JOB_BOOT_TIMEOUT_SECONDS,
    });
    return { ok: outcome.ok, seconds: outcome.seconds, detail: outcome.detail ?? '' };
  } catch (err) {
    req.log.error(`boot test of guest ${vmid} version ${version} could not run: ${describeError(err)}`);
    return { ok: false, seconds: 0, detail: `could not run: ${describeError(err)}` };
  }
}
