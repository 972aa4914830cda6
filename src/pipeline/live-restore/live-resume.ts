/**
 * `restore --resume-live M`: finishes a restore-on-the-fly whose process died (its journal remains,
 * its pid is gone). The version is exported again on the same socket: QEMU's overlays reconnect to it
 * (their reads waited meanwhile, see live-volumes.ts). Then, by what is found:
 * - QEMU runs: each disk already on its final volume is done; a copy job that stopped on an error
 *   (the export was gone) is resumed; a job that ended or is missing is started again; then
 *   live-complete.ts waits, pivots and publishes.
 * - QEMU is gone (the guest was powered off, or the host rebooted): before the pivot, each disk is
 *   copied offline from its overlay, which holds everything the guest wrote. In the pivot phase the
 *   final volumes may be newer than the overlays: nothing is overwritten; the message says which files
 *   to look at.
 */
import { mkdir } from 'node:fs/promises';
import { ColdvaultError, formatBytes, type ProgressListener, type TaskLog } from '../../core/index.js';
import { processAlive } from '../../datastore/index.js';
import type { VersionKey } from '../../format/index.js';
import { startExport } from '../export/index.js';
import { sourceOf, type SourceRef } from '../version-source.js';
import type { WorkerPool } from '../worker-pool.js';
import { completeLive } from './live-complete.js';
import { holdVersion } from './live-hold.js';
import { journalPath, readJournal, writeJournal, type LiveJournal } from './live-journal.js';
import { blockJobs, driveFiles, jobIdOf, qemuAt, qmpAt, startMirror, type Qmp } from './mirror.js';

export type ResumeLiveRequest = SourceRef & {
  pool: WorkerPool;
  newId: string;
  key?: VersionKey;
  stateDir: string;
  log: TaskLog;
  speed?: number;
  onProgress?: ProgressListener;
  abort?: AbortSignal;
};

export async function resumeLiveRestore(req: ResumeLiveRequest): Promise<{ configPath: string; running: boolean }> {
  const journal = await readJournal(req.stateDir, req.newId);
  if (!journal) throw new ColdvaultError('USAGE', `no live restore to guest ${req.newId} is pending (no '${journalPath(req.stateDir, req.newId)}')`);
  if (journal.pid !== process.pid && processAlive(journal.pid)) {
    throw new ColdvaultError('LOCKED', `the live restore to guest ${req.newId} is still driven by process ${journal.pid}`);
  }
  req.log.info(
    `resuming the live restore of guest ${journal.guestId} version ${journal.version} to ${req.newId} (phase ${journal.phase}, from ${journal.source})`,
  );
  journal.pid = process.pid;
  await writeJournal(req.stateDir, journal);
  await mkdir(journal.scratch, { recursive: true, mode: 0o700 });
  const source = sourceOf(req);
  const exp = await startExport({
    source,
    pool: req.pool,
    guestId: journal.guestId,
    version: journal.version,
    key: req.key,
    at: { socket: journal.socket },
    log: req.log,
  });
  const qmp = (await qemuAt(journal.qmpSocket).status(journal.newId)) === 'stopped' ? null : qmpAt(journal.qmpSocket);
  try {
    await holdVersion(source, journal, req.stateDir, req.log);
    if (qmp) await restartCopies(qmp, journal, req);
    else refuseAmbiguous(journal, req.stateDir);
    if (!qmp) req.log.warn(`guest ${req.newId} is not running (no QEMU on '${journal.qmpSocket}'): its disks are finished from their overlays`);
    const { running } = await completeLive({ ...req, source, journal, qmp, export: exp, mirroring: true });
    req.log.info(`restore successful: guest ${req.newId} ${running ? 'runs on its final volumes' : 'is stopped; its final volumes are complete'}`);
    return { configPath: journal.configPath, running };
  } catch (err) {
    await exp.close().catch(() => undefined);
    throw err;
  }
}

/** Each disk not on its final volume gets a running copy job again (resumed, or started anew). */
async function restartCopies(qmp: Qmp, journal: LiveJournal, req: ResumeLiveRequest): Promise<void> {
  const files = await driveFiles(qmp);
  const jobs = await blockJobs(qmp);
  for (const disk of journal.disks) {
    if (files.get(disk.key) === disk.path) continue;
    const job = jobs.get(jobIdOf(disk.key));
    if (job && job.status !== 'concluded' && job.status !== 'aborting') {
      await qmp.execute('block-job-set-speed', { device: jobIdOf(disk.key), speed: req.speed ?? journal.speed ?? 0 });
      if (job.paused || (job['io-status'] && job['io-status'] !== 'ok')) await qmp.execute('block-job-resume', { device: jobIdOf(disk.key) });
      req.log.info(`the copy of disk '${disk.key}' goes on at ${formatBytes(job.offset)} of ${formatBytes(job.len)}`);
      continue;
    }
    if (job) await qmp.execute('job-dismiss', { id: jobIdOf(disk.key) });
    await startMirror(qmp, disk, req.speed ?? journal.speed);
    req.log.info(`started the copy of disk '${disk.key}' again`);
  }
}

function refuseAmbiguous(journal: LiveJournal, stateDir: string): void {
  if (journal.phase !== 'pivoting') return;
  throw new ColdvaultError(
    'LIVE_RESTORE_FAILED',
    `guest ${journal.newId} stopped during its pivot: its final volumes (${journal.disks.map((d) => d.path).join(', ')}) may hold newer writes than its overlays (${journal.disks.map((d) => d.overlay).join(', ')}); nothing was overwritten: check the volumes, then remove the journal '${journalPath(stateDir, journal.newId)}' and write the config yourself`,
  );
}
