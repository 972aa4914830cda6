/**
 * Verify: re-reads every chunk the selected versions use (each distinct chunk once), checks its CRC
 * and SHA-256 in a worker, and checks each version's manifest, indexes and disk digests. Verify tells
 * damage from trouble (chunk-reader.ts `readTrouble`):
 * - damaged (content wrong: CRC, decode, SHA-256, impossible size; a corrupt manifest or index): the
 *   chunk is moved to quarantine, so that the next backup that meets the same data writes it afresh
 *   (healing); the versions using it are `failed`.
 * - missing (the file is not there): reported, the versions are `failed`; nothing to quarantine (an
 *   S3 source takes note, `markMissing`, since its backups do not look at each chunk they reuse).
 * - unreadable (an I/O error: EIO, ENXIO, ENODEV, ENOMEM from a pulled disk, ESTALE, timeouts): says
 *   nothing about the data. The chunk is left in place and reported "unreadable, not checked"; the
 *   versions are `incomplete` (not fully checked), never `failed`: a flaky USB cable must not
 *   quarantine good chunks that every version shares.
 * - A version removed while verify runs (pruned: its folder is gone) is skipped with an INFO line.
 * The catalog records ok / failed / incomplete per version. The store's file modes are checked too
 * (datastore/privacy.ts): files others can read get a WARN with the fix; the result is unchanged.
 *
 * Verify reads a version source (version-source.ts): a local datastore (`store`, with its catalog), or
 * another node's (`source`): every chunk comes through the wire and is checked here alike, but a
 * damaged chunk cannot be quarantined there (the report says so: verify on that node does it), and
 * no catalog records the verdicts.
 */
import PQueue from 'p-queue';
import {
  ColdvaultError,
  describeError,
  errnoCode,
  formatBytes,
  formatRate,
  isColdvaultError,
  logAt,
  type ProgressListener,
  type TaskLog,
} from '../core/index.js';
import { checkPrivate, privacyWarnings } from '../datastore/index.js';
import { chunkLength, type Manifest, openManifest, type VersionKey } from '../format/index.js';
import type { Catalog } from '../catalog/index.js';
import { Tasks, Window } from './limits.js';
import { ProgressMeter } from './progress-meter.js';
import { ChunkReader, readQueue, readTrouble, readWindow, type ReadTrouble } from './chunk-reader.js';
import { checkIndexDigest } from './restore-disk.js';
import { sourceOf, type SourceRef, type VersionSource } from './version-source.js';
import type { ChunkCodec, WorkerPool } from './worker-pool.js';

/** What to verify: `store` (a local datastore) or `source` (any version source, e.g. another node's datastore). */
export type VerifyRequest = VerifyOptions & SourceRef;

export interface VerifyOptions {
  /** records each version's verdict (a local store's catalog); none for a remote source */
  catalog?: Catalog;
  pool: WorkerPool;
  guestId?: string;
  version?: number;
  /** the key of encrypted versions: with it their content is checked too (without: CRC and structure only) */
  key?: VersionKey;
  log: TaskLog;
  onProgress?: ProgressListener;
}

export interface VersionRef {
  guestId: string;
  version: number;
}

/** damaged or missing chunks (in `badChunks`), unreadable ones (in `unreadableChunks`) */
export interface BadChunk {
  digest: string;
  trouble: ReadTrouble;
  error: string;
  versions: string[];
  quarantined?: string;
}

export type VerifyVerdict = 'ok' | 'failed' | 'incomplete';

export interface VerifiedVersion extends VersionRef {
  state: VerifyVerdict;
  ok: boolean;
  /** false when something of it could not be read (I/O errors), whatever else was found */
  fullyChecked: boolean;
  errors: string[];
}

export interface VerifyResult {
  versions: VerifiedVersion[];
  /** versions removed (pruned) while verify ran */
  skipped: VersionRef[];
  chunks: number;
  bytes: number;
  /** damaged (quarantined) and missing chunks */
  badChunks: BadChunk[];
  /** chunks that could not be read (I/O errors): not checked, left in place */
  unreadableChunks: BadChunk[];
  /** encrypted versions checked without their key: blob CRC and structure only, content not checked */
  contentUnchecked: Array<VersionRef & { fingerprint: string }>;
  ok: boolean;
}

/** How a chunk is checked: plain (CRC, SHA-256), keyed (CRC, tag, HMAC), sealed (CRC and structure: no key). */
type CheckMode = 'plain' | 'keyed' | 'sealed';

interface ChunkUse {
  length: number;
  users: Set<string>;
  mode: CheckMode;
}

/** The problems found per version: the worst decides its verdict. */
class Findings {
  private readonly byVersion = new Map<string, Array<{ trouble: ReadTrouble; error: string }>>();

  add(version: string, trouble: ReadTrouble, error: string): void {
    this.byVersion.set(version, [...(this.byVersion.get(version) ?? []), { trouble, error }]);
  }

  troubled(): string[] {
    return [...this.byVersion.keys()];
  }

  verdict(version: string): VerifyVerdict {
    const found = this.byVersion.get(version) ?? [];
    if (found.length === 0) return 'ok';
    return found.some((f) => f.trouble !== 'unreadable') ? 'failed' : 'incomplete';
  }

  fullyChecked(version: string): boolean {
    return !(this.byVersion.get(version) ?? []).some((f) => f.trouble === 'unreadable');
  }

  errors(version: string): string[] {
    return (this.byVersion.get(version) ?? []).map((f) => f.error);
  }
}

/** A verify under way: its options and the source it reads. */
type Run = VerifyOptions & { source: VersionSource };

export async function verifyStore(request: VerifyRequest): Promise<VerifyResult> {
  const req: Run = { ...request, source: sourceOf(request) };
  const started = Date.now();
  await warnAboutModes(req);
  const targets = await selectVersions(req);
  await req.source.checkpoint('verify:listed');
  const findings = new Findings();
  const contentUnchecked: VerifyResult['contentUnchecked'] = [];
  const uses = await collectChunks(req, targets, findings, contentUnchecked);
  await req.source.checkpoint('verify:collected');
  const bytes = [...uses.values()].reduce((s, u) => s + u.length, 0);
  req.log.info(`verifying ${targets.length} version(s): ${uses.size} chunks, ${formatBytes(bytes)}`);
  const found = await checkChunks(req, uses, bytes);
  const gone = await vanished(req, [...findings.troubled(), ...found.flatMap((b) => b.versions)]);
  const live = liveChunks(found, gone);
  await reportChunks(req, live, findings);
  const skipped = targets.filter((t) => gone.has(label(t)));
  for (const t of skipped) req.log.info(`version ${label(t)} was removed while verify ran (pruned): skipped`);
  const versions = targets.filter((t) => !gone.has(label(t))).map((t) => verdictOf(t, findings));
  for (const v of versions) recordResult(req, v);
  const result: VerifyResult = {
    versions,
    skipped,
    chunks: uses.size,
    bytes,
    ok: versions.every((v) => v.ok),
    badChunks: live.filter((b) => b.trouble !== 'unreadable'),
    unreadableChunks: live.filter((b) => b.trouble === 'unreadable'),
    contentUnchecked: contentUnchecked.filter((t) => !gone.has(label(t))),
  };
  logSummary(req.log, result, (Date.now() - started) / 1000);
  return result;
}

const label = (t: VersionRef): string => `${t.guestId}/${t.version}`;

async function warnAboutModes(req: Run): Promise<void> {
  if (req.source.dir === undefined) return;
  for (const line of privacyWarnings(await checkPrivate([req.source.dir]))) logAt(req.log, line.level, line.message);
}

async function selectVersions(req: Run): Promise<VersionRef[]> {
  const guests = req.guestId ? [req.guestId] : await req.source.listGuestIds();
  const out: VersionRef[] = [];
  for (const guestId of guests) {
    const numbers = await req.source.listVersionNumbers(guestId);
    for (const version of numbers) if (req.version === undefined || req.version === version) out.push({ guestId, version });
  }
  if (req.guestId && req.version !== undefined && out.length === 0) {
    await req.source.readManifest(req.guestId, req.version); // throws VERSION_NOT_FOUND with the right words
  }
  return out;
}

async function collectChunks(req: Run, targets: VersionRef[], findings: Findings, unchecked: VerifyResult['contentUnchecked']): Promise<Map<string, ChunkUse>> {
  const uses = new Map<string, ChunkUse>();
  for (const t of targets) {
    try {
      const manifest = await req.source.readManifest(t.guestId, t.version);
      const mode = checkModeOf(req, manifest, t);
      if (mode === 'sealed') unchecked.push({ ...t, fingerprint: manifest.encryption?.fingerprint ?? '' });
      for (const disk of manifest.disks) {
        const index = await req.source.readIndex(t.guestId, t.version, disk.index);
        checkIndexDigest(index, disk, `disk '${disk.key}' of guest ${t.guestId} version ${t.version}`);
        index.digests.forEach((d, i) => {
          if (!d) return;
          const hex = d.toString('hex');
          const use = uses.get(hex) ?? { length: chunkLength(index.size, i, index.chunkSize), users: new Set<string>(), mode };
          use.users.add(label(t));
          uses.set(hex, use);
        });
      }
    } catch (err) {
      findings.add(label(t), versionTrouble(err), describeError(err));
    }
  }
  return uses;
}

/**
 * How the chunks of a version are checked. An encrypted one with its key: its manifest is
 * authenticated here first (a failing MAC, another version's manifest: damaged); without its key, or
 * with another key: what shows without one (CRC and structure), and the report says so.
 */
function checkModeOf(req: Run, manifest: Manifest, t: VersionRef): CheckMode {
  const enc = manifest.encryption;
  if (!enc) return 'plain';
  if (!req.key || req.key.fingerprint !== enc.fingerprint) return 'sealed';
  openManifest(manifest, req.key, t, `version ${t.version} of guest ${t.guestId}`);
  return 'keyed';
}

/** A version's own files: not there (pruned, or lost), wrong (damaged), or an I/O error (unreadable). */
function versionTrouble(err: unknown): ReadTrouble {
  const cause = err instanceof Error ? err.cause : undefined;
  if (isColdvaultError(err, 'VERSION_NOT_FOUND') || errnoCode(cause) === 'ENOENT') return 'missing';
  if (err instanceof ColdvaultError && err.code !== 'IO' && err.code !== 'DEVICE_FAILED') return 'damaged';
  return 'unreadable';
}

async function checkChunks(req: Run, uses: Map<string, ChunkUse>, total: number): Promise<BadChunk[]> {
  const bad: BadChunk[] = [];
  const queue = readQueue(req.source.chunks, new PQueue({ concurrency: 4 }));
  const keyed = req.key && [...uses.values()].some((u) => u.mode === 'keyed') ? req.pool.withKey(req.key) : undefined;
  const codecs: Record<CheckMode, ChunkCodec | undefined> = { plain: req.pool, keyed, sealed: req.pool.sealedOnly() };
  const readers = new Map<CheckMode, ChunkReader>();
  const readerFor = (mode: CheckMode): ChunkReader => {
    let r = readers.get(mode);
    if (!r) readers.set(mode, (r = new ChunkReader(req.source.chunks, codecs[mode] as ChunkCodec, queue)));
    return r;
  };
  const window = new Window(readWindow(req.source.chunks, req.pool));
  const tasks = new Tasks();
  const meter = new ProgressMeter('verify', total, req.onProgress);
  meter.item = 'chunks';
  const counters = { readBytes: 0, zeroBytes: 0, dedupBytes: 0, storedBytes: 0 };
  for (const [hex, use] of uses) {
    await window.acquire();
    tasks.start(async () => {
      try {
        await readerFor(use.mode).use(hex, use.length, () => Promise.resolve());
      } catch (err) {
        const error = describeError(err).replace(/^chunk [0-9a-f]+ (is )?/, '');
        bad.push({ digest: hex, trouble: readTrouble(err), error, versions: [...use.users].sort() });
      } finally {
        counters.readBytes += use.length;
        meter.update(counters);
        window.release();
      }
    });
  }
  await tasks.settle().finally(() => keyed?.release());
  return bad;
}

/**
 * The versions among `labels` that are gone: removed (pruned) while verify ran. A version that cannot
 * be looked at (EIO on a failing disk, a node that does not answer) is not gone.
 */
async function vanished(req: Run, labels: string[]): Promise<Set<string>> {
  const gone = new Set<string>();
  for (const name of new Set(labels)) {
    const slash = name.lastIndexOf('/');
    if (await req.source.versionGone(name.slice(0, slash), Number(name.slice(slash + 1)))) gone.add(name);
  }
  return gone;
}

/** The bad chunks as the versions still present see them (a chunk only pruned versions used is dropped). */
function liveChunks(found: BadChunk[], gone: Set<string>): BadChunk[] {
  return found
    .map((b) => ({ ...b, versions: b.versions.filter((v) => !gone.has(v)) }))
    .filter((b) => b.versions.length > 0)
    .sort((a, b) => a.digest.localeCompare(b.digest));
}

async function reportChunks(req: Run, chunks: BadChunk[], findings: Findings): Promise<void> {
  for (const bad of chunks) {
    const users = `used by ${bad.versions.join(', ')}`;
    if (bad.trouble === 'damaged') {
      bad.quarantined = await quarantine(req, bad.digest);
      req.log.error(`chunk ${bad.digest} is damaged (${bad.error}); ${users}${quarantineNote(req, bad)}`);
    } else if (bad.trouble === 'missing') {
      const marked = await markMissing(req, bad.digest);
      req.log.error(`chunk ${bad.digest} is missing; ${users}${marked ? '; the next backup of this data writes it again' : ''}`);
    } else {
      req.log.warn(`chunk ${bad.digest} is unreadable, not checked (${bad.error}); left in place; ${users}`);
    }
    for (const v of bad.versions)
      findings.add(v, bad.trouble, `chunk ${bad.digest}: ${bad.trouble === 'unreadable' ? 'unreadable, not checked: ' : ''}${bad.error}`);
  }
}

function quarantineNote(req: Run, bad: BadChunk): string {
  if (bad.quarantined) return '; moved to quarantine, the next backup of this data writes it again';
  if (!req.source.quarantine)
    return `; left in ${req.source.describe}: a remote chunk cannot be quarantined from here, 'coldvault verify' on that node does it`;
  return '';
}

async function quarantine(req: Run, digest: string): Promise<string | undefined> {
  if (!req.source.quarantine) return undefined;
  try {
    return await req.source.quarantine(digest);
  } catch (err) {
    req.log.error(`chunk ${digest} could not be moved to quarantine: ${describeError(err)}`);
    return undefined;
  }
}

/** Whether the source took note of a missing chunk for the next backup (S3; a folder's backup finds it missing by itself). */
async function markMissing(req: Run, digest: string): Promise<boolean> {
  if (!req.source.markMissing) return false;
  try {
    await req.source.markMissing(digest);
    return true;
  } catch (err) {
    req.log.error(`chunk ${digest}: marking it for the next backup failed: ${describeError(err)}`);
    return false;
  }
}

function verdictOf(t: VersionRef, findings: Findings): VerifiedVersion {
  const state = findings.verdict(label(t));
  return { ...t, state, ok: state === 'ok', fullyChecked: findings.fullyChecked(label(t)), errors: findings.errors(label(t)) };
}

function recordResult(req: Run, v: VerifiedVersion): void {
  if (v.state === 'failed' || v.state === 'incomplete')
    req.log.error(
      `version ${label(v)}: ${v.state === 'failed' ? 'FAILED' : 'not fully checked (incomplete)'}: ${v.errors.slice(0, 3).join('; ')}${v.errors.length > 3 ? ` (and ${v.errors.length - 3} more)` : ''}`,
    );
  try {
    req.catalog?.markVerified(v.guestId, v.version, v.state, v.errors.slice(0, 5).join('; ') || undefined);
  } catch {
    // a version whose manifest is unreadable has no catalog row; the report above names it
  }
}

function logSummary(log: TaskLog, r: VerifyResult, seconds: number): void {
  const count = (state: VerifyVerdict): number => r.versions.filter((v) => v.state === state).length;
  const damaged = r.badChunks.filter((b) => b.trouble === 'damaged').length;
  log.info(
    `verified ${r.chunks} chunks (${formatBytes(r.bytes)}) in ${seconds.toFixed(1)} s (${formatRate(r.bytes, seconds)}): ` +
      `${damaged} damaged, ${r.badChunks.length - damaged} missing, ${r.unreadableChunks.length} unreadable; ` +
      `${count('failed')} of ${r.versions.length} version(s) failed, ${count('incomplete')} not fully checked${r.skipped.length ? `, ${r.skipped.length} skipped (pruned meanwhile)` : ''}`,
  );
  for (const line of verifyVerdict(r)) logAt(log, r.ok ? 'INFO' : 'ERROR', line);
}

/** The line that says which encrypted versions were checked without their key (none: undefined). */
export function uncheckedNote(r: VerifyResult): string | undefined {
  if (r.contentUnchecked.length === 0) return undefined;
  const keys = [...new Set(r.contentUnchecked.map((v) => v.fingerprint))].join(', ');
  return (
    `${r.contentUnchecked.length} encrypted version(s) checked without their key (${keys}): blob CRC and structure only, ` +
    'their content was not checked; give --keyfile FILE to check it'
  );
}

/** The one-line verdicts a person reads (CLI, task log): ok, FAILED (damage) and/or INCOMPLETE (trouble). */
export function verifyVerdict(r: VerifyResult): string[] {
  const skipped = r.skipped.length ? `; ${r.skipped.length} version(s) skipped (pruned while verify ran)` : '';
  const note = uncheckedNote(r);
  if (r.ok) return [`verify ok: ${r.versions.length} version(s), ${r.chunks} chunks${skipped}`, ...(note ? [note] : [])];
  const lines: string[] = [];
  const failed = r.versions.filter((v) => v.state === 'failed').length;
  if (failed > 0) lines.push(`verify FAILED: ${r.badChunks.length} bad chunk(s), ${failed} version(s) damaged`);
  const unchecked = r.versions.filter((v) => !v.fullyChecked).length;
  if (unchecked > 0) {
    lines.push(
      `verify INCOMPLETE: ${r.unreadableChunks.length} chunk(s) could not be read (I/O errors), ${unchecked} version(s) not fully checked: ` +
        'this is trouble with the disk or its connection (cable, port, hub, power), not damage to the backups; ' +
        'the chunks were left in place: check the connection and the disk (dmesg), then run verify again',
    );
  }
  if (note) lines.push(note);
  return lines;
}
