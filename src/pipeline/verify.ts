/**
 * Verify: re-reads every chunk the selected versions use (each distinct chunk once), checks its CRC
 * and SHA-256 in a worker, and checks each version's manifest, indexes and disk digests. Each bad
 * chunk is reported with the versions that use it and moved to quarantine, so that the next backup
 * that meets the same data writes it afresh (healing); the catalog records ok / failed per version.
 */
import PQueue from 'p-queue';
import { describeError } from '../core/errors.js';
import type { TaskLog } from '../core/log.js';
import type { ProgressListener } from '../core/progress.js';
import { formatBytes, formatRate } from '../core/units.js';
import type { Datastore } from '../datastore/index.js';
import { chunkLength } from '../format/index.js';
import type { Catalog } from '../catalog/index.js';
import { Tasks, Window } from './limits.js';
import { ProgressMeter } from './progress-meter.js';
import { ChunkReader } from './chunk-reader.js';
import { checkIndexDigest } from './restore-disk.js';
import type { WorkerPool } from './worker-pool.js';

export interface VerifyRequest {
  store: Datastore;
  catalog: Catalog;
  pool: WorkerPool;
  guestId?: string;
  version?: number;
  log: TaskLog;
  onProgress?: ProgressListener;
}

export interface BadChunk {
  digest: string;
  error: string;
  versions: string[];
  quarantined?: string;
}

export interface VerifyResult {
  versions: Array<{ guestId: string; version: number; ok: boolean; errors: string[] }>;
  chunks: number;
  bytes: number;
  badChunks: BadChunk[];
  ok: boolean;
}

interface ChunkUse {
  length: number;
  users: Set<string>;
}

export async function verifyStore(req: VerifyRequest): Promise<VerifyResult> {
  const started = Date.now();
  const targets = await selectVersions(req);
  await req.store.checkpoint('verify:listed');
  const versionErrors = new Map<string, string[]>(targets.map((t) => [label(t), []]));
  const uses = await collectChunks(req, targets, versionErrors);
  await req.store.checkpoint('verify:collected');
  const bytes = [...uses.values()].reduce((s, u) => s + u.length, 0);
  req.log.info(`verifying ${targets.length} version(s): ${uses.size} chunks, ${formatBytes(bytes)}`);
  const badChunks = await checkChunks(req, uses, bytes);
  for (const bad of badChunks) {
    bad.quarantined = await req.store.chunks.quarantine(bad.digest);
    req.log.error(`chunk ${bad.digest} is bad (${bad.error}); used by ${bad.versions.join(', ')}${bad.quarantined ? '; moved to quarantine, the next backup of this data writes it again' : ''}`);
    for (const v of bad.versions) versionErrors.get(v)?.push(`chunk ${bad.digest}: ${bad.error}`);
  }
  const versions = targets.map((t) => ({ ...t, errors: versionErrors.get(label(t)) ?? [], ok: (versionErrors.get(label(t)) ?? []).length === 0 }));
  for (const v of versions) recordResult(req, v);
  const seconds = (Date.now() - started) / 1000;
  req.log.info(`verified ${uses.size} chunks (${formatBytes(bytes)}) in ${seconds.toFixed(1)} s (${formatRate(bytes, seconds)}): ${badChunks.length} bad, ${versions.filter((v) => !v.ok).length} of ${versions.length} version(s) failed`);
  return { versions, chunks: uses.size, bytes, badChunks, ok: versions.every((v) => v.ok) };
}

const label = (t: { guestId: string; version: number }): string => `${t.guestId}/${t.version}`;

async function selectVersions(req: VerifyRequest): Promise<Array<{ guestId: string; version: number }>> {
  const guests = req.guestId ? [req.guestId] : await req.store.listGuestIds();
  const out: Array<{ guestId: string; version: number }> = [];
  for (const guestId of guests) {
    const numbers = await req.store.listVersionNumbers(guestId);
    for (const version of numbers) if (req.version === undefined || req.version === version) out.push({ guestId, version });
  }
  if (req.guestId && req.version !== undefined && out.length === 0) {
    await req.store.readManifest(req.guestId, req.version); // throws VERSION_NOT_FOUND with the right words
  }
  return out;
}

async function collectChunks(req: VerifyRequest, targets: Array<{ guestId: string; version: number }>, errors: Map<string, string[]>): Promise<Map<string, ChunkUse>> {
  const uses = new Map<string, ChunkUse>();
  for (const t of targets) {
    try {
      const manifest = await req.store.readManifest(t.guestId, t.version);
      for (const disk of manifest.disks) {
        const index = await req.store.readIndex(t.guestId, t.version, disk.index);
        checkIndexDigest(index, disk, `disk '${disk.key}' of guest ${t.guestId} version ${t.version}`);
        index.digests.forEach((d, i) => {
          if (!d) return;
          const hex = d.toString('hex');
          const use = uses.get(hex) ?? { length: chunkLength(index.size, i, index.chunkSize), users: new Set<string>() };
          use.users.add(label(t));
          uses.set(hex, use);
        });
      }
    } catch (err) {
      errors.get(label(t))?.push(describeError(err));
      req.log.error(`version ${label(t)}: ${describeError(err)}`);
    }
  }
  return uses;
}

async function checkChunks(req: VerifyRequest, uses: Map<string, ChunkUse>, total: number): Promise<BadChunk[]> {
  const bad: BadChunk[] = [];
  const reader = new ChunkReader(req.store.chunks, req.pool, new PQueue({ concurrency: 4 }));
  const window = new Window(req.pool.size * 2 + 2);
  const tasks = new Tasks();
  const meter = new ProgressMeter('verify', total, req.onProgress);
  meter.item = 'chunks';
  const counters = { readBytes: 0, zeroBytes: 0, dedupBytes: 0, storedBytes: 0 };
  for (const [hex, use] of uses) {
    await window.acquire();
    tasks.start(async () => {
      try {
        await reader.use(hex, use.length, async () => undefined);
      } catch (err) {
        bad.push({ digest: hex, error: describeError(err).replace(/^chunk [0-9a-f]+ (is )?/, ''), versions: [...use.users].sort() });
      } finally {
        counters.readBytes += use.length;
        meter.update(counters);
        window.release();
      }
    });
  }
  await tasks.settle();
  return bad;
}

function recordResult(req: VerifyRequest, v: { guestId: string; version: number; ok: boolean; errors: string[] }): void {
  try {
    req.catalog.markVerified(v.guestId, v.version, v.ok ? 'ok' : 'failed', v.errors.slice(0, 5).join('; ') || undefined);
  } catch {
    // a version whose manifest is unreadable has no catalog row; the report above names it
  }
}
