/**
 * One version copied from the source to the target, under the source's read lease on it (a node's
 * source has none: pull-source.ts): its manifest (checked: checksum, schema, this guest and number),
 * guest config (the manifest's), log and disk indexes (each checked against the manifest: size, disk
 * SHA-256 over the chunk digests) are read; the chunks the target has are kept (touched, or known),
 * the others fetched and checked (chunks.ts); the target's last look (one fetched again if a gc took
 * it in the one window a folder's rule leaves); then the target publishes the files, manifest last.
 */
import { ColdvaultError, type TaskLog } from '../../core/index.js';
import { decodeFixedIndex, decodeManifest, MANIFEST_FILE, type Manifest, VERSION_CONFIG_FILE, VERSION_LOG_FILE } from '../../format/index.js';
import { checkIndexDigest } from '../restore-disk.js';
import { fetchChunks, type FetchContext } from './chunks.js';
import type { PullSource } from './pull-source.js';

export interface VersionContext extends FetchContext {
  /** the target's chunk size: an index with another is refused */
  chunkSize: number;
  /** the target, for the read lease's purpose */
  to: string;
  log: TaskLog;
}

interface FetchedVersion {
  manifest: Manifest;
  /** the version's files as the source stores them, by name */
  files: Map<string, Buffer>;
  /** the distinct chunks its indexes name */
  digests: string[];
}

/** Copies version `version` of `guestId` to the target; its manifest once it is published. */
export async function copyVersion(ctx: VersionContext, guestId: string, version: number): Promise<Manifest> {
  const lease = await ctx.source.lease(guestId, version, `sync of version ${version} of guest ${guestId} to ${ctx.to}`);
  try {
    const fetched = await fetchVersion(ctx.source, guestId, version, ctx.chunkSize);
    const missing = await ctx.sink.startVersion(version, fetched.digests);
    ctx.counters.present += fetched.digests.length - missing.length;
    await fetchChunks(ctx, missing);
    await confirmChunks(ctx, fetched.digests, `version ${version} of guest ${guestId}`);
    await ctx.sink.publish(version, fetched.files, fetched.manifest, fetched.digests, ctx.log);
    return fetched.manifest;
  } finally {
    await lease.release().catch(() => undefined); // a lease left behind ends by itself (its holder is gone)
  }
}

async function fetchVersion(source: PullSource, guestId: string, version: number, chunkSize: number): Promise<FetchedVersion> {
  const where = `of version ${version} of guest ${guestId} in ${source.where}`;
  const manifestFile = await source.readFile(guestId, version, MANIFEST_FILE);
  const manifest = decodeManifest(manifestFile, where);
  if (manifest.guestId !== guestId || manifest.version !== version) {
    throw new ColdvaultError('MANIFEST_CORRUPT', `the manifest ${where} is the one of guest ${manifest.guestId} version ${manifest.version}`);
  }
  const files = new Map<string, Buffer>([[MANIFEST_FILE, manifestFile]]);
  const config = await source.readFile(guestId, version, VERSION_CONFIG_FILE);
  if (config.toString('utf8') !== manifest.config) throw new ColdvaultError('MANIFEST_CORRUPT', `the guest config ${where} is not the one its manifest holds`);
  files.set(VERSION_CONFIG_FILE, config);
  const log = await source.readFileIfAny(guestId, version, VERSION_LOG_FILE);
  if (log) files.set(VERSION_LOG_FILE, log);
  const digests = new Set<string>();
  for (const disk of manifest.disks) {
    const file = await source.readFile(guestId, version, disk.index);
    const index = decodeFixedIndex(file, `${disk.index} ${where}`);
    if (index.chunkSize !== chunkSize)
      throw new ColdvaultError('INDEX_CORRUPT', `index ${disk.index} ${where} uses chunks of ${index.chunkSize} bytes, the target ${chunkSize}`);
    checkIndexDigest(index, disk, `disk '${disk.key}' ${where}`);
    files.set(disk.index, file);
    for (const d of index.digests) if (d) digests.add(d.toString('hex'));
  }
  return { manifest, files, digests: [...digests] };
}

/**
 * The target's last look (a folder's: after its chunk folders are synced every chunk must be there,
 * the gc rule of datastore/gc.ts). One that a gc removed between its touch and now is fetched again, once.
 */
async function confirmChunks(ctx: VersionContext, digests: readonly string[], what: string): Promise<void> {
  for (let round = 0; ; round++) {
    const gone = await ctx.sink.confirm(digests);
    if (gone.length === 0) return;
    if (round > 0)
      throw new ColdvaultError('CHUNK_MISSING', `${gone.length} chunk(s) of ${what} vanished from '${ctx.to}' after they were stored (${gone[0]}, ...)`);
    await fetchChunks(ctx, gone);
  }
}
