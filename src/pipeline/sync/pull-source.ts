/**
 * The source side of a sync: the datastore versions are copied from, read through the version
 * source port (version-source.ts: guests, chunks as stored, read lease, close), plus what a copy
 * byte for byte needs beyond it: a version's files as stored, and the version list.
 *  - a datastore on another node (NODE:STORE, RemoteStore, the reader half of the remote protocol):
 *    as before this port existed, it lists the versions with their times and takes no read lease (a
 *    token that may read a store need not be one that may lease; a version pruned on the node under
 *    the copy fails it with VERSION_NOT_FOUND or CHUNK_MISSING, and nothing of it is published);
 *  - a folder datastore (Datastore) and an S3 datastore (S3Datastore): each version copied is held
 *    by a read lease against prune while it is read (the folder's lease file, the bucket's
 *    `locks/read-<vmid>-<version>/` object), so its chunks stay until the copy is done.
 * Nothing a source gives is trusted: version.ts and chunks.ts check it all before it is stored.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, ioError, isColdvaultError } from '../../core/index.js';
import { isS3Url, type Datastore, type S3Datastore } from '../../datastore/index.js';
import { RemoteStore, S3Error, type RemoteStoreOptions, type WireStats } from '../../targets/index.js';
import { localSource, remoteSource, s3Source, type VersionLease, type VersionSource } from '../version-source.js';

/** A version of the source; `time` when its listing gives it (a node's), else read from its manifest when needed. */
export interface SourceVersion {
  version: number;
  time?: string;
}

export interface PullSource {
  /** as the command line or the job named it: `node1:main`, `/mnt/usb1`, `offsite` */
  readonly label: string;
  /** where it is: the node's URL, the folder, `s3://bucket/prefix/` */
  readonly origin: string;
  /** for messages: `datastore 'main' on node https://...`, `datastore '/mnt/usb1'` */
  readonly where: string;
  /** what to run when a chunk there is damaged */
  readonly verifyAdvice: string;
  /** the datastore's id, when the source tells it (a node's does not) */
  readonly datastoreId?: string;
  /** chunk reads worth keeping in flight */
  readonly readsInFlight: number;
  readonly reader: VersionSource;
  listVersions(guestId: string): Promise<SourceVersion[]>;
  /** a version's manifest time (the listing's, else its manifest's) */
  timeOf(guestId: string, row: SourceVersion): Promise<string>;
  /** a file of a version as stored: VERSION_NOT_FOUND when the version is gone */
  readFile(guestId: string, version: number, name: string): Promise<Buffer>;
  /** the same, undefined when the version has no such file (a version's log) */
  readFileIfAny(guestId: string, version: number, name: string): Promise<Buffer | undefined>;
  lease(guestId: string, version: number, purpose: string): Promise<VersionLease>;
  /** bodies on the wire so far (a node's source) */
  wire(): WireStats | undefined;
  close(): void;
}

const NO_LEASE: VersionLease = { release: () => Promise.resolve() };
/** chunk reads in flight from a folder: the disk, and the worker pool's checks, are the bound */
const FOLDER_READS = 4;

/** Datastore `options.store` on a node of the ring (`label`: NODE:STORE). */
export function nodeSource(options: RemoteStoreOptions, label: string, nodeName: string): PullSource {
  const remote = new RemoteStore(options);
  const where = `datastore '${remote.store}' on node ${remote.node}`;
  const ifAny = (guestId: string, version: number, name: string): Promise<Buffer | undefined> =>
    remote.getFile(guestId, version, name).catch((err: unknown) => {
      if (isColdvaultError(err, 'REMOTE_NOT_FOUND')) return undefined;
      throw err;
    });
  return {
    label,
    origin: remote.node,
    where,
    verifyAdvice: "run 'coldvault verify' on that node",
    readsInFlight: remote.maxInFlight,
    reader: remoteSource(remote, nodeName),
    listVersions: async (guestId) => (await remote.listVersions(guestId)).map((v) => ({ version: v.version, time: v.time })),
    timeOf: async (guestId, row) => row.time ?? (await remote.getManifest(guestId, row.version)).time,
    readFile: (guestId, version, name) => remote.getFile(guestId, version, name),
    readFileIfAny: ifAny,
    lease: () => Promise.resolve(NO_LEASE),
    wire: () => remote.stats,
    close: () => remote.close(),
  };
}

/** A folder datastore (`label`: its path or configured name). */
export function folderSource(store: Datastore, label: string): PullSource {
  const reader = localSource(store);
  return {
    ...storeSide(reader, label, store.dir, store.identity.id, FOLDER_READS),
    verifyAdvice: `run 'coldvault verify --store ${store.dir}'`,
    readFile: (guestId, version, name) => store.readVersionFile(guestId, version, name),
    readFileIfAny: async (guestId, version, name) => {
      const path = join(store.versionDir(guestId, version), name);
      try {
        return await readFile(path);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return undefined;
        throw ioError(`reading '${path}'`, err);
      }
    },
  };
}

/** A datastore in an S3 bucket (`label`: its s3:// address or configured name). */
export function bucketSource(store: S3Datastore, label: string): PullSource {
  const reader = s3Source(store);
  return {
    ...storeSide(reader, label, store.dir, store.identity.id, reader.chunks.readsInFlight ?? 8),
    verifyAdvice: `run 'coldvault verify --store ${label}${isS3Url(label) ? ` --endpoint ${store.settings.endpoint}` : ''}'`,
    readFile: (guestId, version, name) => store.readVersionFile(guestId, version, name),
    readFileIfAny: (guestId, version, name) =>
      store.readVersionFile(guestId, version, name).catch((err: unknown) => {
        if (err instanceof S3Error && err.code === 'S3_NOT_FOUND') return undefined;
        throw err;
      }),
  };
}

/** What a folder and a bucket source share: the version source's lists, manifests and lease. */
function storeSide(
  reader: VersionSource,
  label: string,
  origin: string,
  datastoreId: string,
  readsInFlight: number,
): Omit<PullSource, 'verifyAdvice' | 'readFile' | 'readFileIfAny'> {
  return {
    label,
    origin,
    where: `datastore '${origin}'`,
    datastoreId,
    readsInFlight,
    reader,
    listVersions: async (guestId) => (await reader.listVersionNumbers(guestId)).map((version) => ({ version })),
    timeOf: async (guestId, row) => row.time ?? (await reader.readManifest(guestId, row.version)).time,
    lease: (guestId, version, purpose) => reader.lease(guestId, version, purpose),
    wire: () => undefined,
    close: () => reader.close(),
  };
}
