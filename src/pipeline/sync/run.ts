/**
 * A sync: the run registers with the target (SyncSink.begin: a bucket's writer registration); then for
 * each guest (the ones asked for, or every guest of the source), under the guest's hold on the
 * target (its lock, and a folder's writer registration), the versions the plan names (plan.ts) are
 * copied oldest first (version.ts), then the keep-N rotation runs. A version that fails is not
 * published and the guest's later versions wait for the next sync (so a guest's copy never has a
 * hole a later sync could not fill: numbers are never reused); other guests go on. A failure that no
 * other guest can escape (the source or the service unreachable or refusing this node, the target
 * full, the run aborted) ends the sync there. The caller opens the source and the target and closes them.
 */
import { ColdvaultError, describeError, formatBytes, formatDuration, isColdvaultError, type TaskLog } from '../../core/index.js';
import type { WireStats } from '../../targets/index.js';
import { WorkerPool } from '../worker-pool.js';
import { type ChunkCounters, newChunkCounters } from './chunks.js';
import { planGuest, type SkipReason } from './plan.js';
import type { PullSource, SourceVersion } from './pull-source.js';
import type { GuestSink, SyncSink } from './sink.js';
import { copyVersion, type VersionContext } from './version.js';

export interface SyncRequest {
  /** where the versions come from (its label names it in the log and the result) */
  source: PullSource;
  /** where they go */
  sink: SyncSink;
  /** the guests to pull; every guest with versions in the source when absent */
  guestIds?: readonly string[];
  /** guests left out of "every guest" */
  exclude?: readonly string[];
  /** keep-N rotation of each synced guest here */
  keep?: number;
  log: TaskLog;
  signal?: AbortSignal;
  /** ms to wait for a guest locked by a backup or another sync here, or a bucket's gc (default 0: LOCKED at once) */
  lockWaitMs?: number;
}

export interface SyncedGuest {
  id: string;
  ok: boolean;
  /** versions pulled and published here */
  pulled: number[];
  /** versions that were here already */
  present: number[];
  skipped: Array<{ version: number; reason: SkipReason }>;
  /** versions the keep-N rotation removed here */
  pruned: number[];
  /** disk bytes of the versions pulled */
  logicalBytes: number;
  seconds: number;
  /** the version that failed, and why */
  failedVersion?: number;
  error?: string;
  code?: string;
}

export interface SyncResult {
  from: string;
  to: string;
  ok: boolean;
  guests: SyncedGuest[];
  chunks: ChunkCounters;
  /** bodies on the wire to and from a node's source: bytes received (answers) and sent (requests), requests and retries */
  wire: { receivedBytes: number; sentBytes: number; requests: number; retries: number };
  logicalBytes: number;
  seconds: number;
}

/** Failures no later guest can escape: the sync ends at the first one. */
const ENDS_SYNC = new Set([
  'CONNECTION_FAILED',
  'TLS_FAILED',
  'FINGERPRINT_MISMATCH',
  'REMOTE_UNAUTHORIZED',
  'REMOTE_FORBIDDEN',
  'REMOTE_NOT_FOUND',
  'NO_SPACE',
  'ABORTED',
  'S3_UNAUTHORIZED',
  'S3_FORBIDDEN',
  'S3_NO_BUCKET',
  'S3_CLOCK_SKEW',
  'S3_FAILED',
]);

/** What every guest's copy shares; each guest adds its hold on the target (`sink`). */
interface Run extends Omit<VersionContext, 'sink'> {
  req: SyncRequest;
}

export async function syncStore(req: SyncRequest): Promise<SyncResult> {
  const started = Date.now();
  const { source, sink, log } = req;
  if (source.datastoreId === sink.datastoreId) {
    throw new ColdvaultError('USAGE', `the source and the target of a sync are the same datastore (${sink.datastoreId} in '${sink.dir}')`);
  }
  const pool = new WorkerPool(); // checks fetched chunks, one worker per core
  const run: Run = {
    req,
    source,
    pool,
    counters: newChunkCounters(),
    inFlight: Math.max(source.readsInFlight, sink.writesInFlight),
    chunkSize: sink.chunkSize,
    to: sink.dir,
    log,
    signal: req.signal,
  };
  const wire = { receivedBytes: 0, sentBytes: 0, requests: 0, retries: 0 };
  try {
    const guests = await guestsToSync(req);
    const origin = source.origin === source.label ? '' : ` (${source.origin})`;
    log.info(`sync from ${source.label}${origin} to '${sink.dir}': guests ${guests.join(' ') || '(none)'}${req.keep ? `, keep ${req.keep}` : ''}`);
    await sink.begin(`sync from ${source.label}`, req.lockWaitMs ?? 0);
    let reports: SyncedGuest[];
    try {
      reports = await syncGuests(run, guests);
    } finally {
      await sink.end();
    }
    addWire(wire, source.wire());
    const result = summarize(req, reports, run.counters, wire, started);
    logSummary(log, result);
    return result;
  } finally {
    await pool.close();
  }
}

async function guestsToSync(req: SyncRequest): Promise<string[]> {
  if (req.guestIds) return [...req.guestIds];
  return (await req.source.reader.listGuestIds()).filter((id) => !req.exclude?.includes(id));
}

async function syncGuests(run: Run, guests: readonly string[]): Promise<SyncedGuest[]> {
  const reports: SyncedGuest[] = [];
  let ended: string | undefined;
  for (const id of guests) {
    if (ended === undefined && run.signal?.aborted) ended = 'the sync was aborted';
    if (ended !== undefined) {
      reports.push({ ...newReport(id), ok: false, error: `not synced: ${ended}`, code: 'ABORTED' });
      continue;
    }
    const report = await syncGuest(run, id);
    reports.push(report);
    if (report.code && ENDS_SYNC.has(report.code)) ended = report.error;
  }
  if (ended !== undefined && reports.some((r) => r.error?.startsWith('not synced'))) run.req.log.error(`the remaining guests were not synced: ${ended}`);
  return reports;
}

function newReport(id: string): SyncedGuest {
  return { id, ok: true, pulled: [], present: [], skipped: [], pruned: [], logicalBytes: 0, seconds: 0 };
}

async function syncGuest(run: Run, id: string): Promise<SyncedGuest> {
  const started = Date.now();
  const report = newReport(id);
  const { source, sink, lockWaitMs, log } = run.req;
  const from = source.label;
  try {
    const rows = await source.listVersions(id);
    const target = await sink.holdGuest(id, `sync of guest ${id} from ${from}`, lockWaitMs ?? 0, log);
    try {
      await pullGuest(run, target, id, rows, report);
    } finally {
      await target.release();
    }
  } catch (err) {
    fail(report, err);
    log.error(`sync of guest ${id} from ${from} failed - ${describeError(err)}`);
  }
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

async function pullGuest(run: Run, target: GuestSink, id: string, rows: readonly SourceVersion[], report: SyncedGuest): Promise<void> {
  const { source, keep, log } = run.req;
  const from = source.label;
  const plan = await planGuest(target, rows, (row) => source.timeOf(id, row), keep);
  report.present = plan.present;
  report.skipped = plan.skipped;
  logPlan(log, `guest ${id}`, `${from}${keep ? ` (keep ${keep})` : ''}`, rows.length, plan);
  for (const [i, row] of plan.pull.entries()) {
    try {
      const manifest = await copyVersion({ ...run, sink: target }, id, row.version);
      report.pulled.push(row.version);
      report.logicalBytes += manifest.disks.reduce((sum, d) => sum + d.size, 0);
      log.info(`pulled version ${row.version} of guest ${id} (${row.time ?? manifest.time}) into ${target.where(row.version)}`);
    } catch (err) {
      const rest = plan.pull.slice(i + 1).map((r) => r.version);
      report.skipped.push(...rest.map((version) => ({ version, reason: 'after-failure' as const })));
      report.failedVersion = row.version;
      const waiting = rest.length > 0 ? `; version(s) ${rest.join(', ')} wait for the next sync` : '';
      throw new ColdvaultError(
        codeOf(err),
        `pulling version ${row.version} of guest ${id} failed, nothing of it was published: ${describeError(err)}${waiting}`,
        {
          cause: err,
        },
      );
    }
  }
  if (keep && report.pulled.length > 0) report.pruned = await target.rotate(keep, log);
}

function logPlan(log: TaskLog, guest: string, from: string, listed: number, plan: Awaited<ReturnType<typeof planGuest>>): void {
  if (listed === 0) log.warn(`${guest} has no versions in ${from}`);
  const byReason = (reason: SkipReason): number[] => plan.skipped.filter((s) => s.reason === reason).map((s) => s.version);
  const conflicts = byReason('conflict');
  const older = byReason('older');
  const beyondKeep = byReason('keep');
  if (conflicts.length > 0)
    log.warn(`${guest}: version(s) ${conflicts.join(', ')} here are other backups than those numbers in ${from}: kept as they are, not pulled`);
  if (older.length > 0)
    log.info(`${guest}: version(s) ${older.join(', ')} not pulled: not here, but not newer than version ${plan.highest} here (pruned here)`);
  if (beyondKeep.length > 0) log.info(`${guest}: version(s) ${beyondKeep.join(', ')} not pulled: older than the ones the keep rotation keeps`);
  const pull = plan.pull.map((r) => r.version);
  log.info(`${guest}: ${pull.length} version(s) to pull${pull.length ? ` (${pull.join(', ')})` : ''}, ${plan.present.length} here already`);
}

function fail(report: SyncedGuest, err: unknown): void {
  report.ok = false;
  report.error = describeError(err);
  report.code = codeOf(err);
}

function codeOf(err: unknown): ColdvaultError['code'] {
  return isColdvaultError(err) ? err.code : 'IO';
}

function addWire(wire: SyncResult['wire'], stats: WireStats | undefined): void {
  if (!stats) return;
  wire.receivedBytes += stats.receivedBytes;
  wire.sentBytes += stats.sentBytes;
  wire.requests += stats.requests;
  wire.retries += stats.retries;
}

function summarize(req: SyncRequest, guests: SyncedGuest[], chunks: ChunkCounters, wire: SyncResult['wire'], started: number): SyncResult {
  const logicalBytes = guests.reduce((sum, g) => sum + g.logicalBytes, 0);
  return {
    from: req.source.label,
    to: req.sink.dir,
    ok: guests.every((g) => g.ok),
    guests,
    chunks,
    wire,
    logicalBytes,
    seconds: (Date.now() - started) / 1000,
  };
}

function logSummary(log: TaskLog, r: SyncResult): void {
  const pulled = r.guests.reduce((sum, g) => sum + g.pulled.length, 0);
  log.info(
    `pulled ${pulled} version(s), ${formatBytes(r.logicalBytes)} of disks: ${r.chunks.fetched} chunk(s) fetched (${formatBytes(r.chunks.fetchedBytes)}), ${r.chunks.present} already here`,
  );
  if (r.wire.requests === 0) return;
  log.info(
    `bytes on the wire: ${formatBytes(r.wire.receivedBytes)} received, ${formatBytes(r.wire.sentBytes)} sent, ${r.wire.requests} request(s) in ${formatDuration(r.seconds)}`,
  );
}
