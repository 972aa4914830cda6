/**
 * Backups whose job answers `downtime` directly: the engine's own backupGuest (the built code in
 * dist/, whose chunk workers are .js files) on a real datastore, with a BackupRequest.downtime that
 * says the guest was off for DOWNTIME. The job flow that measures it for real starts the guest after
 * the manifest is written until snapshots come (issue 11); test/jobs/job-downtime.test.ts measures a
 * real guest's downtime. Used by the catalog, server and web UI tests.
 */
import { Catalog } from '../../dist/catalog/index.js';
import { createTaskLog } from '../../dist/core/index.js';
import { Datastore } from '../../dist/datastore/index.js';
import { backupGuest, WorkerPool } from '../../dist/pipeline/index.js';
import type { Downtime, TaskLog } from '../../src/core/index.js';
import type { Manifest } from '../../src/format/index.js';

/** The example: `guest 101 was off for 00:00:14 (shutdown 11.2 s, snapshot 0.02 s, start 2.9 s)`. */
export const DOWNTIME: Downtime = { offMs: 14_123.4, shutdownMs: 11_200, snapshotMs: 20, startMs: 2_900 };
/** DOWNTIME in whole milliseconds, as the manifest and the catalog keep it. */
export const DOWNTIME_MS = 14_123;
export const DOWNTIME_LINE = 'guest 101 was off for 00:00:14 (shutdown 11.2 s, snapshot 0.02 s, start 2.9 s)';

export interface InProcessBackup {
  storeDir: string;
  guestsDir: string;
  storageDir: string;
  guestId: string;
  /** left out: a request without the field (a backup that is no job's, as `coldvault backup` makes) */
  downtime?: () => Downtime | undefined;
  /** the job's last say before the manifest (the still-stopped check; a job may start the guest here) */
  beforePublish?: (log: TaskLog) => Promise<void>;
}

/** Backs up one guest in this process; returns its manifest and the lines the task log got. */
export async function backupInProcess(opts: InProcessBackup): Promise<{ manifest: Manifest; lines: string[] }> {
  const store = await Datastore.open(opts.storeDir);
  const catalog = await Catalog.open(store);
  const pool = new WorkerPool(1);
  const log = createTaskLog();
  try {
    const { manifest } = await backupGuest({
      store,
      catalog,
      pool,
      guestsDir: opts.guestsDir,
      storages: { local: opts.storageDir },
      guestId: opts.guestId,
      node: 'testnode',
      zstdLevel: 1,
      log,
      ...(opts.downtime ? { downtime: opts.downtime } : {}),
      ...(opts.beforePublish ? { beforePublish: opts.beforePublish } : {}),
    });
    return { manifest, lines: log.lines.map((l) => l.message) };
  } finally {
    await pool.close();
    catalog.close();
  }
}
