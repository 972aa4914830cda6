/**
 * One version pulled from a node: its manifest (checked: checksum, schema, this guest and number),
 * guest config (the manifest's), log and disk indexes (each checked against the manifest: size, disk
 * SHA-256 over the chunk digests) are fetched; the chunks the store has are touched, the others
 * fetched and checked (chunks.ts); the chunk folders synced and every chunk looked at once more
 * (one fetched again if a gc took it in the one window its rule leaves); then the files are written
 * into a staging folder, manifest last, and the folder is renamed to the version's number.
 */
import { ColdvaultError, isColdvaultError } from '../../core/index.js';
import type { Catalog } from '../../catalog/index.js';
import { decodeFixedIndex, decodeManifest, MANIFEST_FILE, type Manifest, VERSION_CONFIG_FILE, VERSION_LOG_FILE } from '../../format/index.js';
import type { RemoteStore } from '../../targets/index.js';
import { checkIndexDigest } from '../restore-disk.js';
import { fetchChunks, type FetchContext } from './chunks.js';

export interface VersionContext extends FetchContext {
  catalog: Catalog;
}

interface FetchedVersion {
  manifest: Manifest;
  /** the version's files as the node stores them, by name */
  files: Map<string, Buffer>;
  /** the distinct chunks its indexes name */
  digests: string[];
}

/** Pulls version `version` of `guestId` into the store; its manifest once it is published. */
export async function copyVersion(ctx: VersionContext, guestId: string, version: number): Promise<Manifest> {
  const fetched = await fetchVersion(ctx.remote, guestId, version, ctx.store.identity.chunkSize);
  const missing = await ctx.store.chunks.touchOrMissing(fetched.digests);
  ctx.counters.present += fetched.digests.length - missing.length;
  await fetchChunks(ctx, missing);
  await confirmChunks(ctx, fetched.digests, `version ${version} of guest ${guestId}`);
  await publishVersion(ctx, guestId, version, fetched);
  return fetched.manifest;
}

async function fetchVersion(remote: RemoteStore, guestId: string, version: number, chunkSize: number): Promise<FetchedVersion> {
  const where = `of version ${version} of guest ${guestId} in datastore '${remote.store}' on node ${remote.node}`;
  const manifestFile = await remote.getFile(guestId, version, MANIFEST_FILE);
  const manifest = decodeManifest(manifestFile, where);
  if (manifest.guestId !== guestId || manifest.version !== version) {
    throw new ColdvaultError('MANIFEST_CORRUPT', `the manifest ${where} is the one of guest ${manifest.guestId} version ${manifest.version}`);
  }
  const files = new Map<string, Buffer>([[MANIFEST_FILE, manifestFile]]);
  const config = await remote.getFile(guestId, version, VERSION_CONFIG_FILE);
  if (config.toString('utf8') !== manifest.config) throw new ColdvaultError('MANIFEST_CORRUPT', `the guest config ${where} is not the one its manifest holds`);
  files.set(VERSION_CONFIG_FILE, config);
  const log = await optionalFile(remote, guestId, version, VERSION_LOG_FILE);
  if (log) files.set(VERSION_LOG_FILE, log);
  const digests = new Set<string>();
  for (const disk of manifest.disks) {
    const file = await remote.getFile(guestId, version, disk.index);
    const index = decodeFixedIndex(file, `${disk.index} ${where}`);
    if (index.chunkSize !== chunkSize)
      throw new ColdvaultError('INDEX_CORRUPT', `index ${disk.index} ${where} uses chunks of ${index.chunkSize} bytes, this store ${chunkSize}`);
    checkIndexDigest(index, disk, `disk '${disk.key}' ${where}`);
    files.set(disk.index, file);
    for (const d of index.digests) if (d) digests.add(d.toString('hex'));
  }
  return { manifest, files, digests: [...digests] };
}

async function optionalFile(remote: RemoteStore, guestId: string, version: number, name: string): Promise<Buffer | undefined> {
  try {
    return await remote.getFile(guestId, version, name);
  } catch (err) {
    if (isColdvaultError(err, 'REMOTE_NOT_FOUND')) return undefined;
    throw err;
  }
}

/**
 * The last look of the gc rule (datastore/gc.ts): after the chunk folders are synced every chunk must be
 * there. One that a gc removed between its touch and now is fetched again, once.
 */
async function confirmChunks(ctx: FetchContext, digests: readonly string[], what: string): Promise<void> {
  for (let round = 0; ; round++) {
    await ctx.store.chunks.syncDirs();
    const gone = await ctx.store.chunks.missing(digests);
    if (gone.length === 0) return;
    if (round > 0) {
      throw new ColdvaultError('CHUNK_MISSING', `${gone.length} chunk(s) of ${what} vanished from '${ctx.store.dir}' after they were stored (${gone[0]}, ...)`);
    }
    await fetchChunks(ctx, gone);
  }
}

async function publishVersion(ctx: VersionContext, guestId: string, version: number, fetched: FetchedVersion): Promise<void> {
  const staging = await ctx.store.createStaging(guestId);
  try {
    for (const [name, data] of fetched.files) if (name !== MANIFEST_FILE) await staging.writeFile(name, data);
    await staging.writeFile(MANIFEST_FILE, fetched.files.get(MANIFEST_FILE) as Buffer);
    await ctx.store.checkpoint('sync:publish');
    await ctx.store.publish(staging, version);
  } catch (err) {
    await ctx.store.discardStaging(staging).catch(() => undefined);
    throw err;
  }
  ctx.catalog.recordVersion(fetched.manifest);
}
