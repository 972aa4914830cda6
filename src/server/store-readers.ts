/**
 * What the reader half of the remote datastore protocol (routes/store-reads.ts, read-leases.ts) reads
 * a configured store through: a folder, opened per request (reading its identity file), or an S3
 * datastore, opened once and kept while the server runs, so that every chunk GET of a remote restore
 * reuses its client's connections (closed with the server). Both answer a published version's files
 * only (an S3 version whose manifest is not stored yet is VERSION_NOT_FOUND, as a folder's staging
 * is invisible), and lease a version as a local reader does: the folder's read lease
 * (datastore/version-use.ts), the bucket's `read-<vmid>-<version>` lock object that s3Source takes and
 * S3 prune respects (pipeline/s3-prune.ts).
 */
import { ColdvaultError, errnoCode, isColdvaultError } from '../core/index.js';
import { type Datastore, leaseVersion, S3Datastore, type S3StoreSettings } from '../datastore/index.js';
import { S3Error } from '../targets/index.js';
import { MANIFEST_FILE } from '../format/index.js';
import { s3Source } from '../pipeline/index.js';
import { ApiError } from './errors.js';
import type { KnownStore } from './paths.js';

export interface StoreReader {
  /** a file of a published version, as stored; VERSION_NOT_FOUND, or NOT_FOUND for a file the version lacks */
  versionFile(guestId: string, version: number, name: string): Promise<Buffer>;
  /** a chunk's blob into `buf` from `offset` on, unchecked (the reader checks it); CHUNK_MISSING */
  readChunkInto(hex: string, buf: ArrayBuffer, offset: number): Promise<number>;
  /** holds the version against prune until released (LOCKED when a folder's prune is removing it for longer than `waitMs`) */
  lease(guestId: string, version: number, purpose: string, waitMs: number): Promise<{ release(): Promise<void> }>;
  listVersionNumbers(guestId: string): Promise<number[]>;
}

export class StoreReaders {
  private readonly buckets = new Map<string, Promise<S3Datastore>>();

  constructor(
    private readonly opts: {
      openFolder: (dir: string) => Promise<Datastore>;
      s3Settings: (name: string) => S3StoreSettings | undefined;
    },
  ) {}

  async open(ref: KnownStore): Promise<StoreReader> {
    return ref.kind === 's3' ? bucketReader(await this.bucket(ref.name)) : folderReader(await this.opts.openFolder(ref.dir));
  }

  /** Closes the kept S3 datastores (the server is closing). */
  async close(): Promise<void> {
    const open = [...this.buckets.values()];
    this.buckets.clear();
    for (const s of await Promise.allSettled(open)) if (s.status === 'fulfilled') s.value.close();
  }

  /** The kept datastore `name`, opened at its first use (a failed open is tried again by the next request). */
  private bucket(name: string): Promise<S3Datastore> {
    let opened = this.buckets.get(name);
    if (!opened) {
      const settings = this.opts.s3Settings(name);
      if (!settings) throw new ApiError('INTERNAL', `datastore '${name}' is listed as an S3 datastore but has no settings`);
      opened = S3Datastore.open(settings);
      this.buckets.set(name, opened);
      opened.catch(() => this.buckets.delete(name));
    }
    return opened;
  }
}

function folderReader(store: Datastore): StoreReader {
  return {
    versionFile: async (guestId, version, name) => {
      try {
        return await store.readVersionFile(guestId, version, name);
      } catch (err) {
        if (!isColdvaultError(err, 'IO') || errnoCode(err.cause) !== 'ENOENT') throw err;
        throw noFile(guestId, version, name);
      }
    },
    readChunkInto: (hex, buf, offset) => store.chunks.readInto(hex, buf, offset),
    lease: (guestId, version, purpose, waitMs) => leaseVersion(store, guestId, version, purpose, waitMs),
    listVersionNumbers: (guestId) => store.listVersionNumbers(guestId),
  };
}

function bucketReader(store: S3Datastore): StoreReader {
  const source = s3Source(store);
  return {
    versionFile: async (guestId, version, name) => {
      if (name !== MANIFEST_FILE && !(await store.client.head(store.keys.file(guestId, version, MANIFEST_FILE)))) {
        throw new ColdvaultError('VERSION_NOT_FOUND', `guest ${guestId} has no version ${version} in '${store.dir}'`);
      }
      try {
        return await store.readVersionFile(guestId, version, name);
      } catch (err) {
        if (!(err instanceof S3Error && err.code === 'S3_NOT_FOUND')) throw err;
        throw noFile(guestId, version, name);
      }
    },
    readChunkInto: (hex, buf, offset) => store.chunks.readInto(hex, buf, offset),
    lease: (guestId, version, purpose) => source.lease(guestId, version, purpose),
    listVersionNumbers: (guestId) => store.listVersionNumbers(guestId),
  };
}

const noFile = (guestId: string, version: number, name: string): ApiError =>
  new ApiError('NOT_FOUND', `version ${version} of guest ${guestId} has no file ${name}`);
