/**
 * The copy of a restore-on-the-fly, done by QEMU itself over QMP: per disk, the final volume added
 * as a block node (`blockdev-add`, zeroes written as holes), a `blockdev-mirror` (sync=full) from the
 * guest's drive (overlay over the export) to it, with an optional speed cap; on a read or write error
 * the job stops (on-*-error=stop) instead of failing, so a resumed export can let it go on; jobs are
 * kept after they end (auto-dismiss off) so their error can be read. When every job is ready (in
 * sync), `block-job-complete` pivots each drive onto its final volume; the overlay and its NBD
 * backing are closed by QEMU when nothing uses them any more.
 * Each command is one short QMP connection (qmpAt): QEMU serves one QMP client at a time, and the
 * restored guest's socket is also the qemu driver's (status, shutdown) and the admin's.
 */
import { ColdvaultError, formatBytes, type TaskLog } from '../../core/index.js';
import { QemuDriver, QmpClient } from '../../guests/hypervisor/index.js';
import type { LiveDisk } from './live-journal.js';

/** how often the jobs are polled: soon at first (a small or sparse disk is in sync within a second), then every half second */
const POLL_MS = [50, 100, 200, 500];
const MIN_POLL_MS = 20;
/** bytes an uncapped mirror keeps in flight per disk: several of the export's 4 MiB chunks (QEMU's default is 1 MiB) */
const BUF_SIZE = 32 * 1024 * 1024;

export interface Qmp {
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T>;
}

/** The qemu driver for the restored guest's own socket: its `status` (is a QEMU there) and `stop` (quit, wait until gone). */
export function qemuAt(qmpSocket: string): QemuDriver {
  return new QemuDriver({ qmpSocket });
}

/** QMP at a socket, one connection per command (rejects as isQmpGone when no QEMU listens). */
export function qmpAt(socket: string): Qmp {
  return {
    execute: async <T>(command: string, args?: Record<string, unknown>): Promise<T> => {
      const client = await QmpClient.connect(socket);
      try {
        return await client.execute<T>(command, args);
      } finally {
        await client.close();
      }
    },
  };
}

export interface BlockJob {
  device: string;
  len: number;
  offset: number;
  ready: boolean;
  status: string;
  paused: boolean;
  'io-status'?: string;
  error?: string;
}

export const jobIdOf = (key: string): string => `live-restore-${key}`;
const targetNodeOf = (key: string): string => `live-target-${key}`;
const driveOf = (key: string): string => `drive-${key}`;

export async function startMirror(qmp: Qmp, disk: LiveDisk, speed: number | undefined): Promise<void> {
  const nodes = await qmp.execute<Array<{ 'node-name': string }>>('query-named-block-nodes', { flat: true });
  if (!nodes.some((n) => n['node-name'] === targetNodeOf(disk.key))) {
    await qmp.execute('blockdev-add', {
      driver: disk.format,
      'node-name': targetNodeOf(disk.key),
      discard: 'unmap',
      ...(await driveSettings(qmp, disk.key)),
      file: { driver: 'file', filename: disk.path },
    });
  }
  await qmp.execute('blockdev-mirror', {
    'job-id': jobIdOf(disk.key),
    device: driveOf(disk.key),
    target: targetNodeOf(disk.key),
    sync: 'full',
    ...(speed ? { speed } : { 'buf-size': BUF_SIZE }), // a capped copy keeps QEMU's 1 MiB steps: the cap holds without 32 MiB bursts
    'on-source-error': 'stop',
    'on-target-error': 'stop',
    'auto-dismiss': false,
  });
}

/**
 * What the guest's drive was started with, kept for its final volume (the guest runs on it after the
 * pivot): the cache mode (the config's `cache=`, none by default: O_DIRECT) and zero detection (off
 * unless the drive has it; a plain restore does not look for zeroes inside a chunk either, and QEMU
 * would scan every buffer of the copy for them).
 */
async function driveSettings(qmp: Qmp, key: string): Promise<{ cache: { direct: boolean; 'no-flush': boolean }; 'detect-zeroes': string }> {
  type Inserted = { cache?: { direct: boolean; 'no-flush': boolean }; detect_zeroes?: string };
  const blocks = await qmp.execute<Array<{ device: string; inserted?: Inserted }>>('query-block');
  const inserted = blocks.find((b) => b.device === driveOf(key))?.inserted;
  const cache = { direct: inserted?.cache?.direct ?? true, 'no-flush': inserted?.cache?.['no-flush'] ?? false };
  return { cache, 'detect-zeroes': inserted?.detect_zeroes ?? 'off' };
}

export async function blockJobs(qmp: Qmp): Promise<Map<string, BlockJob>> {
  const jobs = await qmp.execute<BlockJob[]>('query-block-jobs');
  return new Map(jobs.map((j) => [j.device, j]));
}

export interface CopyProgress {
  copied: number;
  total: number;
}

/** Resolves when every disk's job is ready; rejects when one stopped on an error, ended, or vanished. */
export async function waitUntilReady(
  qmp: Qmp,
  disks: readonly LiveDisk[],
  watch: { onProgress: (p: CopyProgress) => void; abort?: AbortSignal; failureOf?: () => string | undefined },
): Promise<void> {
  let polls = 0;
  let previous: { copied: number; at: number } | undefined;
  for (;;) {
    if (watch.abort?.aborted) throw new ColdvaultError('ABORTED', 'the live restore was interrupted');
    const jobs = await blockJobs(qmp);
    let copied = 0;
    let total = 0;
    let ready = true;
    for (const disk of disks) {
      const job = jobs.get(jobIdOf(disk.key));
      checkJob(disk, job, watch.failureOf);
      copied += job?.offset ?? 0;
      total += job?.len ?? 0;
      ready &&= job?.ready === true;
    }
    watch.onProgress({ copied, total });
    if (ready) return;
    const now = { copied, at: Date.now() };
    await new Promise((r) => setTimeout(r, pollDelay(polls++, previous, now, total)));
    previous = now;
  }
}

/**
 * The wait before the next look: POLL_MS's steps, but no longer than the copy's expected rest at its
 * current rate (at least MIN_POLL_MS): a copy in sync is pivoted within a few tens of milliseconds
 * rather than up to half a second later (a sizeable share of a short copy).
 */
function pollDelay(polls: number, previous: { copied: number; at: number } | undefined, now: { copied: number; at: number }, total: number): number {
  const step = POLL_MS[Math.min(polls, POLL_MS.length - 1)] ?? 500;
  if (!previous || now.copied <= previous.copied || now.at <= previous.at) return step;
  const rest = ((total - now.copied) * (now.at - previous.at)) / (now.copied - previous.copied);
  return Math.max(MIN_POLL_MS, Math.min(step, rest));
}

function checkJob(disk: LiveDisk, job: BlockJob | undefined, failureOf?: () => string | undefined): void {
  if (!job) throw new ColdvaultError('LIVE_RESTORE_FAILED', `the copy of disk '${disk.key}' is gone from QEMU (its block job ended unseen)`);
  const stopped = job['io-status'] && job['io-status'] !== 'ok';
  if (!stopped && job.status !== 'concluded' && job.status !== 'aborting') return;
  const reason = job.error ?? (stopped ? `I/O error (${job['io-status']})` : job.status);
  const extra = failureOf?.();
  throw new ColdvaultError(
    'LIVE_RESTORE_FAILED',
    `the copy of disk '${disk.key}' stopped at ${formatBytes(job.offset)} of ${formatBytes(job.len)}: ${reason}${extra ? `; ${extra}` : ''}`,
  );
}

/** Pivots every ready disk onto its final volume and waits until each job has concluded; checks the drives now use them. */
export async function pivot(qmp: Qmp, disks: readonly LiveDisk[], log: TaskLog): Promise<void> {
  for (const disk of disks) await qmp.execute('block-job-complete', { device: jobIdOf(disk.key) });
  for (;;) {
    const jobs = await blockJobs(qmp);
    const pending = disks.filter((d) => jobs.get(jobIdOf(d.key))?.status !== 'concluded' && jobs.has(jobIdOf(d.key)));
    if (pending.length === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const jobs = await blockJobs(qmp);
  for (const disk of disks) {
    const job = jobs.get(jobIdOf(disk.key));
    if (job?.error) throw new ColdvaultError('LIVE_RESTORE_FAILED', `the pivot of disk '${disk.key}' onto '${disk.path}' failed: ${job.error}`);
    if (job) await qmp.execute('job-dismiss', { id: jobIdOf(disk.key) });
  }
  const files = await driveFiles(qmp);
  for (const disk of disks) {
    const file = files.get(disk.key);
    if (file !== disk.path) throw new ColdvaultError('LIVE_RESTORE_FAILED', `after the pivot, disk '${disk.key}' runs on '${file}', not on '${disk.path}'`);
    log.info(`disk '${disk.key}' now runs on '${disk.path}'`);
  }
}

/** Each drive's file as QEMU's query-block names it, by config key. */
export async function driveFiles(qmp: Qmp): Promise<Map<string, string>> {
  const blocks = await qmp.execute<Array<{ device: string; inserted?: { file: string } }>>('query-block');
  return new Map(blocks.filter((b) => b.device.startsWith('drive-') && b.inserted).map((b) => [b.device.slice('drive-'.length), b.inserted?.file as string]));
}
