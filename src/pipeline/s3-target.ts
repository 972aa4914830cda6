/**
 * The S3 target of a backup (backup-target.ts): a datastore in a bucket (datastore/s3; the publish rule
 * and why gc cannot lose a reused chunk are written down there). hold registers the run as a writer,
 * then takes the guest lock, then primes the dedup with the chunks of the guest's newest version (a
 * published index: no request per chunk); open removes a dead run's unpublished files and takes a new
 * version number; publish PUTs the log, then the manifest inside both locks' `actWithin`, then records
 * the version in the catalog and runs the keep-N rotation. Changed-extent reads work as on a folder
 * (datastoreId). No space check: a bucket has no free space to ask about.
 * Dedup also trusts this machine's known-chunk cache (datastore/s3/s3-known-cache.ts: beside the
 * catalog cache, valid while the gc generation read after registering is the one it was written at),
 * so a guest's first backup skips what other guests stored; publish writes it back with the version's
 * chunks. Not under Object Lock: there a chunk's retention is known only through the guest's own
 * previous version (its manifest's chunks-until), so only that version's chunks are reused unasked.
 */
import { ColdvaultError, describeError, type TaskLog } from '../core/index.js';
import { decodeFixedIndex, encodeManifest, INDEX_SUFFIX, MANIFEST_FILE, type Manifest, VERSION_LOG_FILE } from '../format/index.js';
import PQueue from 'p-queue';
import {
  CHUNKS_UNTIL_META,
  gcGeneration,
  loadKnownChunks,
  retentionPlan,
  saveKnownChunks,
  type HeldS3Lock,
  type RetentionPlan,
  type S3Datastore,
} from '../datastore/index.js';
import type { Catalog } from '../catalog/index.js';
import type { BackupTarget, HeldTarget, VersionWriter } from './backup-target.js';
import { pruneS3Guest } from './s3-prune.js';

export class S3Target implements BackupTarget {
  /** days each version is kept under Object Lock: the datastore's, or a job's longer one; none without Object Lock */
  readonly lockDays?: number;

  /** this machine's known-chunk cache of the datastore (beside the catalog cache); none for an in-memory catalog */
  readonly knownChunksFile?: string;

  /** `options.lockDays`: a job's (or `backup --object-lock-days`) retention, checked against the datastore's (versionLockDays) */
  constructor(
    readonly store: S3Datastore,
    readonly catalog: Catalog,
    options: { lockDays?: number } = {},
  ) {
    this.lockDays = versionLockDays(store, options.lockDays);
    if (catalog.file !== ':memory:') this.knownChunksFile = `${catalog.file}.known-chunks`;
  }

  get label(): string {
    return `'${this.store.dir}'`;
  }

  get datastoreId(): string {
    return this.store.identity.id;
  }

  async hold(guestId: string, lockWaitMs: number, keep: number | undefined): Promise<HeldTarget> {
    const purpose = `backup of guest ${guestId}`;
    const writer = await this.store.locks.acquire({ name: 'writers', shared: true, excludedBy: ['gc'], purpose, waitMs: lockWaitMs });
    let locks: VersionLocks;
    try {
      locks = await this.guestLockAndGeneration(guestId, purpose, lockWaitMs, writer);
    } catch (err) {
      await writer.release();
      throw err;
    }
    return {
      checkSpace: () => Promise.resolve(),
      open: async (_bytes, log) => this.open(guestId, keep, locks, log),
      release: async () => {
        await locks.guest.release();
        await locks.writer.release();
      },
    };
  }

  /** The guest lock, and the gc generation seen after registering (no gc can start before this run's publish), side by side. */
  private async guestLockAndGeneration(guestId: string, purpose: string, waitMs: number, writer: HeldS3Lock): Promise<VersionLocks> {
    const [seen, held] = await Promise.allSettled([
      gcGeneration(this.store),
      this.store.locks.acquire({ name: `guest-${guestId}`, excludedBy: [], purpose, waitMs }),
    ]);
    if (held.status === 'rejected') throw held.reason;
    if (seen.status === 'rejected') {
      await held.value.release();
      throw seen.reason;
    }
    return { writer, guest: held.value, generation: seen.value };
  }

  private async open(guestId: string, keep: number | undefined, locks: VersionLocks, log: TaskLog): Promise<VersionWriter> {
    const folders = await this.store.versionFolders(guestId); // one listing serves the three steps below
    const dead = await this.store.removeUnpublished(guestId, folders);
    if (dead.length > 0) log.info(`removed the files of unfinished version(s) ${dead.join(', ')} of guest ${guestId} (runs that died)`);
    const newest = folders.filter((f) => f.published).at(-1)?.version;
    const plan = this.lockDays === undefined ? undefined : retentionPlan(this.lockDays, new Date(), this.store.dayMs);
    const toHeal = await this.store.chunks.listToHeal();
    if (toHeal.size > 0) log.info(`${toHeal.size} chunk(s) that verify found damaged or missing are uploaded afresh when met`);
    this.store.chunks.beginVersion(plan && { mode: 'COMPLIANCE', until: plan.chunkUntil }, toHeal);
    const [version, prevChunksUntil] = await Promise.all([this.store.takeVersionNumber(guestId, folders), this.prime(guestId, newest, log)]);
    if (!plan) await this.primeFromCache(locks.generation, log);
    return new S3Version(this, guestId, keep, locks, version, plan && { plan, prevChunksUntil });
  }

  /** The known-chunk cache, when no gc started since it was written (its generation is the one read after registering). */
  private async primeFromCache(generation: string, log: TaskLog): Promise<void> {
    if (!this.knownChunksFile) return;
    const cache = await loadKnownChunks(this.knownChunksFile, this.datastoreId, generation);
    if (cache.trusted) {
      const added = this.store.chunks.prime(cache.digests);
      if (added > 0) log.info(`${added} more chunk(s) are known stored from this machine's chunk cache of the datastore (no gc since)`);
    } else if (cache.why === 'gc-ran') {
      log.info("this machine's chunk cache of the datastore was dropped: a garbage collection ran since it was written");
    }
  }

  /** After a publish: the cache holds the version's chunks first, then what else this run knew stored (all valid at `generation`). */
  async saveKnownChunks(referenced: Iterable<string>, generation: string, log: TaskLog): Promise<void> {
    if (!this.knownChunksFile || this.lockDays !== undefined) return;
    await saveKnownChunks(this.knownChunksFile, this.datastoreId, generation, referenced, this.store.chunks.knownNow()).catch((err: unknown) =>
      log.warn(`the chunk cache '${this.knownChunksFile}' was not written (the next backup uploads more): ${describeError(err)}`),
    );
  }

  /**
   * The chunks of the guest's newest version are known to be stored: no request for each. Under
   * Object Lock, answers how long they are all kept (its manifest's chunks-until), if it says.
   */
  private async prime(guestId: string, newest: number | undefined, log: TaskLog): Promise<Date | undefined> {
    if (newest === undefined) return undefined;
    try {
      const manifest = await this.store.readManifest(guestId, newest);
      const indexes = await Promise.all(manifest.disks.map((disk) => this.store.readIndex(guestId, newest, disk.index)));
      let primed = 0;
      for (const index of indexes) primed += this.store.chunks.prime(index.digests.filter((d) => d !== null).map((d) => d.toString('hex')));
      log.info(`${primed} chunk(s) of version ${newest} are reused without a request each`);
      if (this.lockDays === undefined) return undefined;
      const until = (await this.store.client.head(this.store.keys.file(guestId, newest, MANIFEST_FILE)))?.metadata[CHUNKS_UNTIL_META];
      return until ? new Date(until) : undefined;
    } catch (err) {
      log.warn(`reading version ${newest} of guest ${guestId} failed (${describeError(err)}): every chunk is uploaded`);
      return undefined;
    }
  }
}

/**
 * The days a version is kept under Object Lock: the datastore's `--object-lock-days` unless asked for
 * more. Asking needs a datastore made with Object Lock (S3_NO_OBJECT_LOCK: prune and gc know to
 * keep retained objects only there), and never less than its days (USAGE: the datastore's promise
 * that every version is immutable that long holds for every writer).
 */
export function versionLockDays(store: S3Datastore, asked: number | undefined): number | undefined {
  if (asked === undefined) return store.lockDays;
  if (store.lockDays === undefined) {
    throw new ColdvaultError(
      'S3_NO_OBJECT_LOCK',
      `datastore '${store.dir}' was made without Object Lock: ${asked} day(s) of Object Lock need a datastore made with 'coldvault datastore init s3://... --object-lock-days N' (a bucket created with Object Lock)`,
    );
  }
  if (asked < store.lockDays) {
    throw new ColdvaultError(
      'USAGE',
      `Object Lock of ${asked} day(s) is shorter than the ${store.lockDays} day(s) datastore '${store.dir}' keeps every version: a job may lengthen it, never shorten it`,
    );
  }
  return asked;
}

interface VersionLocks {
  writer: HeldS3Lock;
  guest: HeldS3Lock;
  /** the gc generation when the run registered as a writer */
  generation: string;
}

interface VersionRetention {
  plan: RetentionPlan;
  /** how long the previous version's chunks are all kept (undefined: not known, or no previous version) */
  prevChunksUntil?: Date;
}

class S3Version implements VersionWriter {
  private open = true;
  /** every chunk the version's indexes name (for lengthening the retention of reused ones, and the known-chunk cache) */
  private readonly referenced = new Set<string>();

  constructor(
    private readonly target: S3Target,
    private readonly guestId: string,
    private readonly keep: number | undefined,
    private readonly locks: VersionLocks,
    readonly version: number,
    private readonly lock?: VersionRetention,
  ) {}

  private get fileOptions(): { retention?: { mode: 'COMPLIANCE'; until: Date } } {
    return this.lock ? { retention: { mode: 'COMPLIANCE', until: this.lock.plan.versionUntil } } : {};
  }

  get where(): string {
    return `'${this.target.store.dir}guests/${this.guestId}/${this.version}'`;
  }

  get chunks(): S3Datastore['chunks'] {
    return this.target.store.chunks;
  }

  async writeFile(name: string, data: Uint8Array | string): Promise<void> {
    if (name.endsWith(INDEX_SUFFIX) && typeof data !== 'string') {
      for (const d of decodeFixedIndex(Buffer.from(data.buffer, data.byteOffset, data.length), name).digests) if (d) this.referenced.add(d.toString('hex'));
    }
    await this.target.store.writeVersionFile(this.guestId, this.version, name, data, this.fileOptions);
  }

  async publish(manifest: Manifest, logText: string, log: TaskLog): Promise<{ pruned: number[] }> {
    const { store, catalog } = this.target;
    await store.writeVersionFile(this.guestId, this.version, VERSION_LOG_FILE, logText, this.fileOptions);
    const metadata = await this.keepReusedChunks(log);
    const body = encodeManifest(manifest);
    await this.locks.writer.actWithin(async () => {
      await this.checkNoGcRan();
      await this.locks.guest.actWithin((signal) =>
        store.writeVersionFile(this.guestId, this.version, MANIFEST_FILE, body, { ...this.fileOptions, metadata, signal }),
      );
    });
    this.open = false;
    await this.target.saveKnownChunks(this.referenced, this.locks.generation, log);
    if (store.chunks.healed.size > 0) log.info(`healed ${store.chunks.healed.size} chunk(s) that verify had found damaged or missing`);
    catalog.recordVersion(manifest);
    const pruned = this.keep ? await pruneS3Guest({ store, catalog, guestId: this.guestId, options: { keepLast: this.keep }, log, heldGuestLock: true }) : [];
    return { pruned };
  }

  /**
   * Under Object Lock: lengthens the retention of the reused chunks when the previous version's would
   * end before this version's (s3-retention.ts); answers the manifest's chunks-until metadata.
   */
  private async keepReusedChunks(log: TaskLog): Promise<Record<string, string> | undefined> {
    if (!this.lock) return undefined;
    const { plan, prevChunksUntil } = this.lock;
    const { chunks, client, keys } = this.target.store;
    if (prevChunksUntil && prevChunksUntil >= plan.versionUntil) {
      return { [CHUNKS_UNTIL_META]: new Date(Math.min(prevChunksUntil.getTime(), plan.chunkUntil.getTime())).toISOString() };
    }
    const reused = [...this.referenced].filter((h) => !chunks.inserted.has(h));
    const queue = new PQueue({ concurrency: 8 });
    await Promise.all(reused.map((hex) => queue.add(() => client.setRetention(keys.chunk(hex), { mode: 'COMPLIANCE', until: plan.chunkUntil }))));
    if (reused.length > 0) log.info(`kept ${reused.length} reused chunk(s) under Object Lock until ${plan.chunkUntil.toISOString()}`);
    return { [CHUNKS_UNTIL_META]: plan.chunkUntil.toISOString() };
  }

  /** A gc that ran while this run was held up past its lock's life may have removed chunks it reuses: then it must not publish. */
  private async checkNoGcRan(): Promise<void> {
    if ((await gcGeneration(this.target.store)) === this.locks.generation) return;
    throw new ColdvaultError(
      'LOCKED',
      `version ${this.version} of guest ${this.guestId} was not published: a garbage collection ran in ${this.target.store.dir} while this backup was held up longer than its lock lives; run the backup again`,
    );
  }

  async finalLog(logText: string): Promise<void> {
    await this.target.store.writeVersionFile(this.guestId, this.version, VERSION_LOG_FILE, logText, this.fileOptions).catch(() => undefined);
  }

  async discard(): Promise<void> {
    if (this.open) await this.target.store.removeVersion(this.guestId, this.version).catch(() => undefined);
    this.open = false;
  }
}
