/**
 * A sync: for each guest (the ones asked for, or every guest of the node's store), under the guest's
 * lock and a writer registration, the versions the plan names (plan.ts) are pulled oldest first
 * (version.ts), then the keep-N rotation runs. A version that fails is not published and the guest's
 * later versions wait for the next sync (so a guest's copy never has a hole a later sync could not
 * fill: numbers are never reused); other guests go on. A failure that no other guest can escape (the
 * node unreachable or refusing this node, the store full, the run aborted) ends the sync there.
 */
import { ColdvaultError, describeError, formatBytes, formatDuration, isColdvaultError, type TaskLog } from '../../core/index.js';
import type { Catalog } from '../../catalog/index.js';
import type { Datastore } from '../../datastore/index.js';
import { RemoteStore, type RemoteStoreOptions, type RemoteVersion } from '../../targets/index.js';
import { rotateGuest } from '../prune.js';
import { spaceGuard } from '../space.js';
import { WorkerPool } from '../worker-pool.js';
import { type ChunkCounters, newChunkCounters } from './chunks.js';
import { planGuest, type SkipReason } from './plan.js';
import { copyVersion, type VersionContext } from './version.js';

export interface SyncRequest {
  /** the node's datastore: the options of its client (targets/remote cluster.ts remoteStoreOptions) */
  source: RemoteStoreOptions;
  /** `NODE:STORE`, as the log and the result name the source */
  from: string;
  store: Datastore;
  catalog: Catalog;
  /** the guests to pull; every guest with versions in the node's store when absent */
  guestIds?: readonly string[];
  /** guests left out of "every guest" */
  exclude?: readonly string[];
  /** keep-N rotation of each synced guest here */
  keep?: number;
  log: TaskLog;
  signal?: AbortSignal;
  /** ms to wait for a guest locked by a backup or another sync here (default 0: LOCKED at once) */
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
  /** bodies on the wire: bytes received (answers) and sent (requests), requests and retries */
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
]);

interface Run extends VersionContext {
  req: SyncRequest;
}

export async function syncStore(req: SyncRequest): Promise<SyncResult> {
  const started = Date.now();
  const remote = new RemoteStore(req.source);
  const pool = new WorkerPool(); // checks fetched chunks, one worker per core
  const run: Run = {
    req,
    remote,
    pool,
    store: req.store,
    catalog: req.catalog,
    counters: newChunkCounters(),
    guard: spaceGuard(req.store.dir),
    signal: req.signal,
  };
  const wire = { receivedBytes: 0, sentBytes: 0, requests: 0, retries: 0 };
  try {
    const guests = await guestsToSync(req, remote);
    req.log.info(`sync from ${req.from} (${remote.node}) to '${req.store.dir}': guests ${guests.join(' ') || '(none)'}${req.keep ? `, keep ${req.keep}` : ''}`);
    const reports = await syncGuests(run, guests);
    addWire(wire, remote.stats);
    const result = summarize(req, reports, run.counters, wire, started);
    logSummary(req.log, result);
    return result;
  } finally {
    remote.close();
    await pool.close();
  }
}

async function guestsToSync(req: SyncRequest, remote: RemoteStore): Promise<string[]> {
  if (req.guestIds) return [...req.guestIds];
  return (await remote.listGuests()).filter((id) => !req.exclude?.includes(id));
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
  const { store, from, lockWaitMs, log } = run.req;
  try {
    const rows = await run.remote.listVersions(id);
    const lock = await store.locks.acquire(`guest-${id}`, `sync of guest ${id} from ${from}`, lockWaitMs ?? 0);
    try {
      const writer = await store.locks.registerWriter(`sync of guest ${id} from ${from}`);
      try {
        await pullGuest(run, id, rows, report);
      } finally {
        await writer.release();
      }
    } finally {
      await lock.release();
    }
  } catch (err) {
    fail(report, err);
    log.error(`sync of guest ${id} from ${from} failed - ${describeError(err)}`);
  }
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

async function pullGuest(run: Run, id: string, rows: readonly RemoteVersion[], report: SyncedGuest): Promise<void> {
  const { store, catalog, from, keep, log } = run.req;
  await store.cleanupStale(id);
  const plan = await planGuest(store, id, rows, keep);
  report.present = plan.present;
  report.skipped = plan.skipped;
  logPlan(log, `guest ${id}`, `${from}${keep ? ` (keep ${keep})` : ''}`, rows.length, plan);
  for (const [i, row] of plan.pull.entries()) {
    try {
      const manifest = await copyVersion(run, id, row.version);
      report.pulled.push(row.version);
      report.logicalBytes += manifest.disks.reduce((sum, d) => sum + d.size, 0);
      log.info(`pulled version ${row.version} of guest ${id} (${row.time}) into '${store.versionDir(id, row.version)}'`);
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
  if (keep && report.pulled.length > 0) report.pruned = await rotateGuest({ store, catalog, guestId: id, options: { keepLast: keep }, log });
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

function addWire(wire: SyncResult['wire'], stats: { receivedBytes: number; sentBytes: number; requests: number; retries: number }): void {
  wire.receivedBytes += stats.receivedBytes;
  wire.sentBytes += stats.sentBytes;
  wire.requests += stats.requests;
  wire.retries += stats.retries;
}

function summarize(req: SyncRequest, guests: SyncedGuest[], chunks: ChunkCounters, wire: SyncResult['wire'], started: number): SyncResult {
  const logicalBytes = guests.reduce((sum, g) => sum + g.logicalBytes, 0);
  return { from: req.from, to: req.store.dir, ok: guests.every((g) => g.ok), guests, chunks, wire, logicalBytes, seconds: (Date.now() - started) / 1000 };
}

function logSummary(log: TaskLog, r: SyncResult): void {
  const pulled = r.guests.reduce((sum, g) => sum + g.pulled.length, 0);
  log.info(
    `pulled ${pulled} version(s), ${formatBytes(r.logicalBytes)} of disks: ${r.chunks.fetched} chunk(s) fetched (${formatBytes(r.chunks.fetchedBytes)}), ${r.chunks.present} already here`,
  );
  log.info(
    `bytes on the wire: ${formatBytes(r.wire.receivedBytes)} received, ${formatBytes(r.wire.sentBytes)} sent, ${r.wire.requests} request(s) in ${formatDuration(r.seconds)}`,
  );
}
