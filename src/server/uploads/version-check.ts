/**
 * What finish checks before it publishes a pushed version: the manifest against format 1's strict
 * schema and against the upload (guest, version number, node), the guest config file against the
 * manifest's, and each disk's index against its manifest entry (size, chunk size and count, zero
 * chunks and bytes, the disk SHA-256 over the chunk digests). Every refusal is MANIFEST_INVALID
 * naming the field or the disk; the upload stays open, so the sender can correct it and finish again.
 */
import { ColdvaultError, describeError } from '../../core/index.js';
import {
  checkManifestSchema,
  chunkLength,
  DATASTORE_FORMAT,
  decodeFixedIndex,
  INDEX_SUFFIX,
  SchemaViolation,
  VERSION_CONFIG_FILE,
  type Manifest,
  type ManifestDisk,
} from '../../format/index.js';
import { checkIndexDigest } from '../../pipeline/index.js';
import type { ReceivingStore } from './receiving.js';

/** Where the uploaded files are read back from. */
type Received = Pick<ReceivingStore, 'readFile'>;

export interface Expected {
  uploadId: string;
  guestId: string;
  version: number;
  node: string;
}

/** The manifest as sent, checked; MANIFEST_INVALID naming what is wrong. */
export function checkManifest(input: unknown, expected: Expected): Manifest {
  const what = `the manifest of upload ${expected.uploadId}`;
  if (typeof input === 'object' && input !== null && Object.hasOwn(input, 'checksum')) {
    throw invalid(`${what} carries a checksum: leave it out, the server computes it`);
  }
  try {
    checkManifestSchema(input);
  } catch (err) {
    if (!(err instanceof SchemaViolation)) throw err;
    throw invalid(`${what} is not a format-1 manifest: ${err.message}`, err);
  }
  const manifest = input as Manifest;
  const fields = [
    ['format', DATASTORE_FORMAT],
    ['guestId', expected.guestId],
    ['version', expected.version],
    ['node', expected.node],
  ] as const;
  for (const [field, want] of fields) {
    if (manifest[field] !== want) throw invalid(`${what}: ${field} is ${JSON.stringify(manifest[field])}, the upload's is ${JSON.stringify(want)}`);
  }
  return manifest;
}

/** The uploaded files match the manifest: the config file holds its config, exactly its disks' indexes were sent. */
export async function checkFiles(manifest: Manifest, received: Received, uploaded: ReadonlySet<string>): Promise<void> {
  if (!uploaded.has(VERSION_CONFIG_FILE)) throw invalid(`the guest config (${VERSION_CONFIG_FILE}) was not uploaded`);
  const config = await received.readFile(VERSION_CONFIG_FILE);
  if (config.toString('utf8') !== manifest.config) throw invalid(`the uploaded ${VERSION_CONFIG_FILE} is not the manifest's config`);
  const named = new Set(manifest.disks.map((d) => d.index));
  for (const disk of manifest.disks) if (!uploaded.has(disk.index)) throw invalid(`the index ${disk.index} of disk '${disk.key}' was not uploaded`);
  for (const name of uploaded) {
    if (name.endsWith(INDEX_SUFFIX) && !named.has(name)) throw invalid(`the uploaded index ${name} belongs to no disk of the manifest`);
  }
}

/** Checks each disk's uploaded index against its manifest entry; returns every chunk digest the version references. */
export async function checkIndexes(manifest: Manifest, received: Received): Promise<Set<string>> {
  const digests = new Set<string>();
  for (const disk of manifest.disks) {
    const index = decodeFixedIndex(await received.readFile(disk.index), disk.index);
    try {
      checkIndexDigest(index, disk, `disk '${disk.key}'`);
    } catch (err) {
      throw invalid(`the manifest does not match index ${disk.index}: ${describeError(err)}`, err);
    }
    checkDisk(disk, index.chunkSize, index.digests);
    for (const d of index.digests) if (d) digests.add(d.toString('hex'));
  }
  return digests;
}

function checkDisk(disk: ManifestDisk, chunkSize: number, digests: ReadonlyArray<Buffer | null>): void {
  const zero = digests.flatMap((d, i) => (d ? [] : [chunkLength(disk.size, i, chunkSize)]));
  const counts = [
    ['chunkSize', disk.chunkSize, chunkSize],
    ['chunkCount', disk.chunkCount, digests.length],
    ['zeroChunks', disk.zeroChunks, zero.length],
    ['zeroBytes', disk.zeroBytes, zero.reduce((s, n) => s + n, 0)],
  ] as const;
  for (const [field, claimed, actual] of counts) {
    if (claimed !== actual)
      throw invalid(`the manifest does not match index ${disk.index}: disk '${disk.key}' ${field} is ${claimed}, the index says ${actual}`);
  }
}

function invalid(message: string, cause?: unknown): ColdvaultError {
  return new ColdvaultError('MANIFEST_INVALID', message, { cause });
}
