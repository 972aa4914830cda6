/**
 * The second half of a restore-on-the-fly, shared by the process that started the guest and by
 * `--resume-live`: copy, pivot, publish.
 * - With QEMU running: the mirrors run until in sync, then pivot (mirror.ts); each final volume is
 *   fsynced before anything is reported complete.
 * - Without QEMU (the guest powered off during the copy, or QEMU died, or it was gone at resume): each
 *   disk is copied from its overlay (the guest's writes over the export) with qemu-img: nothing the
 *   guest wrote is lost.
 * - Then the config is written as a plain restore writes it (temp name, rename, fsync of the folder),
 *   the overlays, the export's scratch folder, the hold on the version (live-hold.ts) and the
 *   journal are removed.
 * The order makes a crash at any point safe: the journal goes last, so a restore whose config exists
 * but whose journal remains is finished again by `--resume-live` (each step is idempotent).
 */
import { rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describeError, formatBytes, formatDuration, formatRate, type ProgressListener, type TaskLog } from '../../core/index.js';
import { ensureDir, fsyncDir, tempNameFor, writeFileDurable } from '../../datastore/index.js';
import { isQmpGone } from '../../guests/hypervisor/index.js';
import type { RunningExport } from '../export/index.js';
import { ProgressMeter } from '../progress-meter.js';
import type { VersionSource } from '../version-source.js';
import { releaseHold } from './live-hold.js';
import { type LiveDisk, type LiveJournal, removeJournal, writeJournal } from './live-journal.js';
import { copyOffline, removeFiles, syncVolumes } from './live-volumes.js';
import { driveFiles, pivot, startMirror, waitUntilReady, type Qmp } from './mirror.js';

export interface LiveCompletion {
  /** the version's source: the restore's hold on the version is ended through it */
  source: VersionSource;
  journal: LiveJournal;
  stateDir: string;
  /** the guest's QMP connection, or null when QEMU is not running */
  qmp: Qmp | null;
  export: RunningExport;
  log: TaskLog;
  /** caps the copy, bytes per second */
  speed?: number;
  onProgress?: ProgressListener;
  abort?: AbortSignal;
  /** the mirrors were started already (by the caller) */
  mirroring?: boolean;
}

/** Copies, pivots (or copies offline), publishes the config and cleans up; returns whether the guest runs on its final volumes. */
export async function completeLive(c: LiveCompletion): Promise<{ running: boolean }> {
  const started = Date.now();
  let running = c.qmp !== null;
  if (c.qmp) {
    try {
      await copyOnline(c, c.qmp);
    } catch (err) {
      if (!isQmpGone(err) || c.journal.phase === 'pivoting') throw err;
      c.log.warn(`the restored guest ${c.journal.newId} stopped during the copy (QEMU is gone): the copy is finished from its overlays`);
      running = false;
    }
  }
  if (!running) await copyAllOffline(c);
  const total = c.journal.disks.reduce((s, d) => s + d.virtualSize, 0);
  const seconds = (Date.now() - started) / 1000;
  c.log.info(`copied ${formatBytes(total)} in ${formatDuration(seconds)} (${formatRate(total, seconds)})`);
  await publishConfig(c.journal, c.log);
  await finishCleanup(c);
  return { running };
}

async function copyOnline(c: LiveCompletion, qmp: Qmp): Promise<void> {
  const files = await driveFiles(qmp);
  const pending = c.journal.disks.filter((d) => files.get(d.key) !== d.path);
  if (pending.length === 0) return c.log.info('every disk runs on its final volume already');
  if (!c.mirroring) for (const disk of pending) await startMirror(qmp, disk, c.speed);
  const total = pending.reduce((s, d) => s + d.virtualSize, 0);
  const meter = new ProgressMeter('restore', total, c.onProgress);
  let nextLog = 0.1;
  c.log.info(`copying ${formatBytes(total)} to the final volumes while the guest runs${c.speed ? ` (at most ${formatRate(c.speed, 1)})` : ''}`);
  await waitUntilReady(qmp, pending, {
    abort: c.abort,
    failureOf: () => troubleText(c.export),
    onProgress: ({ copied, total: len }) => {
      meter.update({ readBytes: copied, zeroBytes: 0, dedupBytes: 0, storedBytes: copied });
      if (len > 0 && copied / len >= nextLog && copied < len) {
        c.log.info(`copied ${formatBytes(copied)} of ${formatBytes(len)} (${Math.floor((copied / len) * 100)}%)`);
        nextLog = Math.floor((copied / len) * 10 + 1) / 10;
      }
    },
  });
  c.log.info('the copy is in sync: pivoting the guest onto its final volumes');
  c.journal.phase = 'pivoting';
  await writeJournal(c.stateDir, c.journal);
  await pivot(qmp, pending, c.log);
  await syncVolumes(pending.map((d) => d.path));
}

function troubleText(exp: RunningExport): string | undefined {
  const t = exp.troubles;
  if (t.length === 0) return undefined;
  return `${t.length} chunk(s) of the version could not be read (disk '${t[0]?.disk}': ${describeError(t[0]?.error)}): run coldvault verify`;
}

async function copyAllOffline(c: LiveCompletion): Promise<void> {
  for (const disk of c.journal.disks) {
    c.log.info(`copying disk '${disk.key}' from its overlay '${disk.overlay}' to '${disk.path}' (${formatBytes(disk.virtualSize)})`);
    await copyOffline(disk);
  }
}

async function publishConfig(journal: LiveJournal, log: TaskLog): Promise<void> {
  log.info(`restore configuration to '${journal.configPath}'`);
  await ensureDir(dirname(journal.configPath));
  const pending = tempNameFor(journal.configPath);
  await writeFileDurable(pending, Buffer.from(journal.config));
  await rename(pending, journal.configPath);
  await fsyncDir(dirname(journal.configPath));
}

async function finishCleanup(c: LiveCompletion): Promise<void> {
  await removeFiles(c.journal.disks.map((d: LiveDisk) => d.overlay));
  await c.export.close();
  await rm(c.journal.scratch, { recursive: true, force: true });
  await releaseHold(c.source, c.journal);
  await removeJournal(c.stateDir, c.journal.newId);
}
