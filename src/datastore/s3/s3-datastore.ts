/**
 * A datastore in an S3 bucket under a prefix (the layout, the publish rule and the locks: index.ts).
 * It reads as a folder store does (DatastoreReader: guests, versions, manifests, indexes), so the
 * catalog, restore and verify work on it unchanged; writing goes through its writer half
 * (pipeline/s3-target.ts): chunks, then the version's files, then its manifest, last.
 */
import { randomUUID } from 'node:crypto';
import { ColdvaultError } from '../../core/index.js';
import {
  CHUNK_SIZE,
  DATASTORE_FORMAT,
  decodeFixedIndex,
  decodeIdentity,
  decodeManifest,
  encodeIdentity,
  MANIFEST_FILE,
  type DatastoreIdentity,
  type FixedIndex,
  type Manifest,
} from '../../format/index.js';
import { S3Client, S3Error, type PutOptions } from '../../targets/index.js';
import { S3ChunkStore } from './s3-chunks.js';
import { DAY_MS } from './s3-retention.js';
import { S3Keys, type S3StoreSettings } from './s3-location.js';
import { S3Locks } from './s3-locks.js';

export class S3Datastore {
  readonly keys: S3Keys;
  readonly chunks: S3ChunkStore;
  readonly locks: S3Locks;

  private constructor(
    readonly client: S3Client,
    readonly settings: S3StoreSettings,
    readonly identity: DatastoreIdentity,
    /** Object Lock: every object of a version is kept (COMPLIANCE) this many days (s3-retention.ts) */
    readonly lockDays?: number,
    /** the length of those days: DAY_MS, shorter only in tests (to see a retention end) */
    readonly dayMs = DAY_MS,
  ) {
    this.keys = new S3Keys(settings.prefix);
    this.chunks = new S3ChunkStore(client, this.keys);
    this.locks = new S3Locks(client, settings.prefix);
  }

  /** `s3://bucket/prefix`: what a folder store's `dir` is in messages and in the catalog */
  get dir(): string {
    return `s3://${this.settings.bucket}/${this.settings.prefix}`;
  }

  /** Creates the datastore (and the bucket, when it does not exist); refuses a prefix that holds anything. */
  static async init(settings: S3StoreSettings, options: { objectLockDays?: number } = {}): Promise<S3Datastore> {
    const client = clientOf(settings);
    const where = `s3://${settings.bucket}/${settings.prefix}`;
    const lockDays = options.objectLockDays;
    if (!(await client.bucketExists())) await client.createBucket(settings.region, lockDays !== undefined);
    else if (lockDays !== undefined && !(await client.lockConfiguration()).enabled) {
      throw new ColdvaultError(
        'S3_NO_OBJECT_LOCK',
        `bucket ${settings.bucket} was created without Object Lock, which --object-lock-days needs; S3 cannot add it to a bucket for this use: use a new bucket`,
      );
    }
    const keys = new S3Keys(settings.prefix);
    if (await client.head(keys.identity())) throw new ColdvaultError('DATASTORE_EXISTS', `'${where}' already holds a coldvault datastore`);
    for await (const o of client.list(settings.prefix)) {
      throw new ColdvaultError('FOLDER_NOT_EMPTY', `refusing to create a datastore in '${where}': the prefix is not empty (${o.key})`);
    }
    const identity: DatastoreIdentity = { format: DATASTORE_FORMAT, id: randomUUID(), created: new Date().toISOString(), chunkSize: CHUNK_SIZE };
    await client.put(keys.identity(), identityFile(identity, lockDays), { signBody: true, contentType: 'application/json' });
    return new S3Datastore(client, settings, identity, lockDays);
  }

  /** Opens an existing datastore; NOT_A_DATASTORE naming the address when there is none. */
  static async open(settings: S3StoreSettings, seams: { dayMs?: number } = {}): Promise<S3Datastore> {
    const client = clientOf(settings);
    const where = `s3://${settings.bucket}/${settings.prefix}`;
    let file: Buffer;
    try {
      file = await client.get(new S3Keys(settings.prefix).identity());
    } catch (err) {
      if (err instanceof S3Error && err.code === 'S3_NOT_FOUND') {
        throw new ColdvaultError(
          'NOT_A_DATASTORE',
          `'${where}' is not a coldvault datastore; create one with 'coldvault datastore init ${where} --endpoint ${settings.endpoint}'`,
          {
            cause: err,
          },
        );
      }
      throw err;
    }
    const identity = decodeIdentity(file, where);
    if (identity.chunkSize !== CHUNK_SIZE)
      throw new ColdvaultError('DATASTORE_CORRUPT', `datastore '${where}' uses chunk size ${identity.chunkSize}; this coldvault writes ${CHUNK_SIZE}`);
    return new S3Datastore(client, settings, identity, lockDaysOf(file, where), seams.dayMs);
  }

  async listGuestIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const folder of this.client.listFolders(this.keys.guests())) {
      const id = folder.slice(this.keys.guests().length, -1);
      if (/^[1-9][0-9]*$/.test(id)) ids.push(id);
    }
    return ids.sort((a, b) => Number(a) - Number(b));
  }

  /** The published versions (those whose manifest is there), oldest first. */
  async listVersionNumbers(guestId: string): Promise<number[]> {
    return (await this.versionFolders(guestId)).filter((v) => v.published).map((v) => v.version);
  }

  /** Every version folder of the guest, published or not (a dead run's files without a manifest). */
  async versionFolders(guestId: string): Promise<Array<{ version: number; published: boolean }>> {
    const found = new Map<number, boolean>();
    const base = this.keys.guest(guestId);
    for await (const o of this.client.list(base)) {
      const m = /^([1-9][0-9]*)\/(.+)$/.exec(o.key.slice(base.length));
      if (!m) continue;
      const version = Number(m[1]);
      found.set(version, (found.get(version) ?? false) || m[2] === MANIFEST_FILE);
    }
    return [...found].map(([version, published]) => ({ version, published })).sort((a, b) => a.version - b.version);
  }

  async readManifest(guestId: string, version: number): Promise<Manifest> {
    return decodeManifest(await this.readVersionFile(guestId, version, MANIFEST_FILE), `of guest ${guestId} version ${version}`);
  }

  async readIndex(guestId: string, version: number, name: string): Promise<FixedIndex> {
    return decodeFixedIndex(
      await this.readVersionFile(guestId, version, name),
      `'${this.dir}${this.keys.file(guestId, version, name).slice(this.settings.prefix.length)}'`,
    );
  }

  async readVersionFile(guestId: string, version: number, name: string): Promise<Buffer> {
    try {
      return await this.client.get(this.keys.file(guestId, version, name));
    } catch (err) {
      if (err instanceof S3Error && err.code === 'S3_NOT_FOUND') {
        const published = (await this.listVersionNumbers(guestId)).includes(version);
        if (!published) throw new ColdvaultError('VERSION_NOT_FOUND', `guest ${guestId} has no version ${version} in '${this.dir}'`, { cause: err });
      }
      throw err;
    }
  }

  /** Writes a file of a version being made (not visible: its manifest comes last). */
  async writeVersionFile(guestId: string, version: number, name: string, data: Uint8Array | string, options: Omit<PutOptions, 'signBody'> = {}): Promise<void> {
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    await this.client.put(this.keys.file(guestId, version, name), body, { ...options, signBody: true });
  }

  /**
   * The number of a new version of the guest: above every number handed out before (`last-version`)
   * and every folder there, published or not; remembered before it is used. Call with the guest lock.
   */
  async takeVersionNumber(guestId: string, listed?: ReadonlyArray<{ version: number }>): Promise<number> {
    const last = await this.lastVersionNumber(guestId);
    const folders = listed ?? (await this.versionFolders(guestId));
    const next = Math.max(last, folders.at(-1)?.version ?? 0) + 1;
    await this.recordVersionNumber(guestId, next);
    return next;
  }

  /** The highest number `last-version` says was handed out (0 when none was). */
  async lastVersionNumber(guestId: string): Promise<number> {
    return this.client.get(this.keys.lastVersion(guestId)).then(
      (b) => Number(b.toString('utf8')) || 0,
      (err: unknown) => {
        if (err instanceof S3Error && err.code === 'S3_NOT_FOUND') return 0;
        throw err;
      },
    );
  }

  /** Records `version` as the highest number handed out (a sync's copied number); call with the guest lock. */
  async recordVersionNumber(guestId: string, version: number): Promise<void> {
    await this.client.put(this.keys.lastVersion(guestId), Buffer.from(`${version}\n`), { signBody: true });
  }

  /** Deletes every object of a version folder; the manifest first, so the version disappears at once. */
  async removeVersion(guestId: string, version: number): Promise<void> {
    const base = this.keys.version(guestId, version);
    if (this.lockDays !== undefined) {
      await removeAllVersions(this.client, base, `${base}${MANIFEST_FILE}`);
      return;
    }
    await this.client.delete(`${base}${MANIFEST_FILE}`);
    for await (const o of this.client.list(base)) await this.client.delete(o.key);
  }

  /** Removes the files of versions that were never published (dead runs); call with the guest lock. */
  async removeUnpublished(guestId: string, listed?: ReadonlyArray<{ version: number; published: boolean }>): Promise<number[]> {
    const dead = (listed ?? (await this.versionFolders(guestId))).filter((v) => !v.published).map((v) => v.version);
    const removed: number[] = [];
    for (const version of dead) {
      try {
        await this.removeVersion(guestId, version);
        removed.push(version);
      } catch (err) {
        // under Object Lock a dead run's files stay until their retention ends: invisible without a manifest, and their number is not reused
        if (!(err instanceof S3Error && err.code === 'S3_FORBIDDEN' && this.lockDays !== undefined)) throw err;
      }
    }
    return removed;
  }

  /** Whether the version is protected from prune (a `protected` object in its folder). */
  async isProtected(guestId: string, version: number): Promise<boolean> {
    return (await this.client.head(this.keys.file(guestId, version, 'protected'))) !== undefined;
  }

  async setProtected(guestId: string, version: number, value: boolean): Promise<void> {
    const key = this.keys.file(guestId, version, 'protected');
    if (value) await this.client.put(key, Buffer.from(`${new Date().toISOString()}\n`), { signBody: true });
    else await this.client.delete(key);
  }

  /** Ends the client's kept connections. */
  close(): void {
    this.client.close();
  }
}

/** The identity file, with the store's Object Lock days beside the folder store's fields. */
function identityFile(identity: DatastoreIdentity, lockDays: number | undefined): Buffer {
  if (lockDays === undefined) return encodeIdentity(identity);
  return Buffer.from(`${JSON.stringify({ coldvault: 'datastore', ...identity, objectLockDays: lockDays }, null, 2)}\n`);
}

function lockDaysOf(file: Buffer, where: string): number | undefined {
  const days = (JSON.parse(file.toString('utf8')) as { objectLockDays?: unknown }).objectLockDays;
  if (days === undefined) return undefined;
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1)
    throw new ColdvaultError('DATASTORE_CORRUPT', `datastore '${where}' has an invalid objectLockDays (${JSON.stringify(days)})`);
  return days;
}

/**
 * Deletes every version of every object under `prefix` (`first` before the others), by version id:
 * in a versioned bucket a plain DELETE only hides an object behind a delete marker and keeps its bytes.
 * S3_FORBIDDEN when one is still under retention.
 */
export async function removeAllVersions(client: S3Client, prefix: string, first?: string, signal?: AbortSignal): Promise<number> {
  const versions: Array<{ key: string; versionId: string }> = [];
  for await (const v of client.listVersions(prefix)) versions.push(v);
  versions.sort((a, b) => Number(b.key === first) - Number(a.key === first));
  for (const v of versions) await client.delete(v.key, v.versionId, signal);
  return versions.length;
}

function clientOf(settings: S3StoreSettings): S3Client {
  return new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    bucket: settings.bucket,
    credentials: settings.credentials,
    pathStyle: settings.pathStyle,
  });
}
