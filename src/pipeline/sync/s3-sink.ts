/**
 * A datastore in an S3 bucket as the target of a sync (S3Datastore; its layout, publish rule and gc
 * argument: datastore/s3/index.ts). The rules of a backup into a bucket (pipeline/s3-target.ts), for
 * versions that keep their numbers.
 *
 * Crash safety: a version becomes visible only when everything it references is durable.
 *  1. Each chunk the version names that is not known to be stored is checked (CRC, decode, SHA-256
 *     against its name; an encrypted one CRC and size), then PUT; a PUT that answered 200 is durable.
 *  2. Then its indexes, config and log are PUT. Only when every one of those PUTs answered is the
 *     manifest PUT: inside the writer registration's `actWithin`, after the gc generation was found
 *     unchanged, and inside the guest lock's `actWithin` (each lock re-confirmed, the PUT bounded in
 *     time), as a backup does.
 *  3. Then `last-version` is raised to the number (when it was lower) and the catalog cache records it.
 *  So a sync killed at any point (kill -9, power cut, the source or the service gone) leaves no
 *  version or a whole one: without its manifest a version is not listed. What it leaves: chunk
 *  objects no version names (gc collects them), version files without a manifest (the next sync or
 *  backup of the guest deletes them under the guest lock: S3Datastore.removeUnpublished), and lock
 *  objects of a dead process (ignored at once on this host, after an hour elsewhere). Killed between
 *  2 and 3, the version is there and `last-version` lower: the next sync of the guest raises it
 *  (holdGuest), and a backup meanwhile numbers above every version folder anyway. `last-version` is
 *  never raised before the manifest: a sync killed in between would leave the number taken with no
 *  version, and every later sync would take it for one pruned here and never pull it again.
 *
 * Why no interleaving with prune and gc on the bucket loses a chunk a pulled version names (the
 * points of datastore/s3/index.ts, as for a backup):
 *  - `begin` registers the run as a writer (a `writers` lock object, refreshed every minute) BEFORE it
 *    reads any index it dedups against, and the registration is held until the last guest is done.
 *    gc runs only while no writer is registered (and a writer waits while gc holds), so no gc marks
 *    or sweeps during the run.
 *  - Dedup is the S3 datastore's own (S3ChunkStore's known set, no request per chunk): the chunks of
 *    each synced guest's newest version here (read from its indexes after the registration, under the
 *    guest lock) and every chunk the run PUT or knew for an earlier version or guest. Each was named
 *    by a published version while the run was registered, or PUT by the run; prune deletes manifests
 *    and version files, never chunks; gc cannot run before the run ends, and by then the new
 *    manifests name them. So the known set stays true for the whole run (and is shared by its
 *    guests: one registration), and `confirm` has nothing to look at again.
 *  - A run held up (frozen) past a lock's life may not act on it: `actWithin` re-PUTs the lock and
 *    fails with LOCKED when another holds it now, and aborts the PUT after ACT_MS; the gc generation
 *    read right after registering must still be the current one, else a gc ran meanwhile (it may
 *    have swept chunks this run reuses): the version fails with LOCKED and nothing of it is published.
 *  - The guest lock keeps a backup or another sync of the guest out while the plan is made and the
 *    versions are written: a number is never written twice, never over a version here.
 *  - The keep-N rotation runs after the pulls with the guest lock held (pruneS3Guest).
 * Object Lock: s3-sink-retention.ts.
 */
import { ColdvaultError, describeError, isColdvaultError, type TaskLog } from '../../core/index.js';
import type { Catalog } from '../../catalog/index.js';
import {
  CHUNKS_UNTIL_META,
  gcGeneration,
  retentionPlan,
  type HeldS3Lock,
  type ReceivedCheck,
  type RetentionPlan,
  type S3Datastore,
} from '../../datastore/index.js';
import { MANIFEST_FILE, type Manifest } from '../../format/index.js';
import type { PutOptions } from '../../targets/index.js';
import { pruneS3Guest } from '../s3-prune.js';
import { ChunkRetention } from './s3-sink-retention.js';
import type { GuestSink, SyncSink } from './sink.js';

/** PUTs of chunks in flight: each waits a round trip */
const PUTS_IN_FLIGHT = 8;

export class S3Sink implements SyncSink {
  readonly writesInFlight = PUTS_IN_FLIGHT;
  /** Object Lock bookkeeping, for a store with objectLockDays */
  readonly retention?: ChunkRetention;
  private writer?: HeldS3Lock;
  /** the gc generation right after the registration */
  private generation = '';

  constructor(
    readonly store: S3Datastore,
    readonly catalog: Catalog,
  ) {
    if (store.lockDays !== undefined) this.retention = new ChunkRetention(store);
  }

  get dir(): string {
    return this.store.dir;
  }

  get datastoreId(): string {
    return this.store.identity.id;
  }

  get chunkSize(): number {
    return this.store.identity.chunkSize;
  }

  async begin(purpose: string, lockWaitMs: number): Promise<void> {
    const writer = await this.store.locks.acquire({ name: 'writers', shared: true, excludedBy: ['gc'], purpose, waitMs: lockWaitMs });
    let toHeal: Set<string>;
    try {
      this.generation = await gcGeneration(this.store);
      toHeal = await this.store.chunks.listToHeal();
    } catch (err) {
      await writer.release();
      throw err;
    }
    this.writer = writer;
    // nothing is known from before the registration; chunks verify marked for healing are never known
    this.store.chunks.beginVersion(undefined, toHeal);
  }

  async end(): Promise<void> {
    await this.writer?.release();
    this.writer = undefined;
  }

  async holdGuest(guestId: string, purpose: string, lockWaitMs: number, log: TaskLog): Promise<GuestSink> {
    const lock = await this.store.locks.acquire({ name: `guest-${guestId}`, excludedBy: [], purpose, waitMs: lockWaitMs });
    try {
      const folders = await this.store.versionFolders(guestId);
      const dead = await this.store.removeUnpublished(guestId, folders);
      if (dead.length > 0) log.info(`removed the files of unfinished version(s) ${dead.join(', ')} of guest ${guestId} in '${this.dir}' (runs that died)`);
      const numbers = folders.filter((f) => f.published).map((f) => f.version);
      const highest = await this.raiseLastVersion(guestId, numbers.at(-1) ?? 0);
      await this.prime(guestId, numbers.at(-1), log);
      return new S3Guest(this, guestId, lock, numbers, highest);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /** `last-version` raised to `version` when it is lower (a sync killed after its manifest PUT); the highest number handed out. */
  async raiseLastVersion(guestId: string, version: number): Promise<number> {
    const last = await this.store.lastVersionNumber(guestId);
    if (version > last) await this.store.recordVersionNumber(guestId, version);
    return Math.max(last, version);
  }

  /** The chunks of the guest's newest version here are known to be stored (its indexes: a few requests, none per chunk). */
  private async prime(guestId: string, newest: number | undefined, log: TaskLog): Promise<void> {
    if (newest === undefined) return;
    try {
      const manifest = await this.store.readManifest(guestId, newest);
      const indexes = await Promise.all(manifest.disks.map((disk) => this.store.readIndex(guestId, newest, disk.index)));
      const hexes = indexes.flatMap((index) => index.digests.filter((d) => d !== null).map((d) => d.toString('hex')));
      const primed = this.store.chunks.prime(hexes);
      log.info(`guest ${guestId}: ${primed} chunk(s) of version ${newest} here are known to be stored (not fetched, not uploaded again)`);
      if (!this.retention) return;
      const until = (await this.store.client.head(this.store.keys.file(guestId, newest, MANIFEST_FILE)))?.metadata[CHUNKS_UNTIL_META];
      if (until) this.retention.note(hexes, new Date(until));
    } catch (err) {
      log.warn(`reading version ${newest} of guest ${guestId} in '${this.dir}' failed (${describeError(err)}): its chunks are not taken as stored`);
    }
  }

  /** The manifest PUT, the last act of a publish: under both locks' `actWithin`, only when no gc ran since the registration. */
  async putManifest(guestLock: HeldS3Lock, guestId: string, version: number, body: Buffer, options: Omit<PutOptions, 'signBody' | 'signal'>): Promise<void> {
    const writer = this.writer;
    if (!writer) throw new ColdvaultError('LOCKED', `version ${version} of guest ${guestId}: the sync is not registered as a writer in '${this.dir}'`);
    await writer.actWithin(async () => {
      if ((await gcGeneration(this.store)) !== this.generation) {
        throw new ColdvaultError(
          'LOCKED',
          `version ${version} of guest ${guestId} was not published: a garbage collection ran in '${this.dir}' while this sync was held up longer than its lock lives; run the sync again`,
        );
      }
      await guestLock.actWithin((signal) => this.store.writeVersionFile(guestId, version, MANIFEST_FILE, body, { ...options, signal }));
    });
  }
}

class S3Guest implements GuestSink {
  /** Object Lock: the retention of the version being written */
  private plan?: RetentionPlan;

  constructor(
    private readonly sink: S3Sink,
    private readonly guestId: string,
    private readonly lock: HeldS3Lock,
    readonly numbers: number[],
    readonly highest: number,
  ) {}

  async manifestTime(version: number): Promise<string> {
    return (await this.sink.store.readManifest(this.guestId, version)).time;
  }

  where(version: number): string {
    return `'${this.sink.dir}guests/${this.guestId}/${version}'`;
  }

  startVersion(_version: number, digests: readonly string[]): Promise<string[]> {
    const { store } = this.sink;
    if (store.lockDays !== undefined) {
      this.plan = retentionPlan(store.lockDays, new Date(), store.dayMs);
      store.chunks.retention = { mode: 'COMPLIANCE', until: this.plan.chunkUntil };
    }
    return store.chunks.touchOrMissing(digests); // not in the known set
  }

  async storeChunk(hex: string, blob: Uint8Array, check: ReceivedCheck): Promise<Uint8Array> {
    const checked = await check(hex, blob);
    await this.sink.store.chunks.insert(hex, checked);
    if (this.plan) this.sink.retention?.note([hex], this.plan.chunkUntil);
    return checked;
  }

  /** Nothing to look at again: a PUT that answered is durable, and no gc runs while the sync is registered (header). */
  confirm(): Promise<string[]> {
    return Promise.resolve([]);
  }

  async publish(version: number, files: ReadonlyMap<string, Buffer>, manifest: Manifest, digests: readonly string[], log: TaskLog): Promise<void> {
    const { store, catalog } = this.sink;
    const options = this.plan ? { retention: { mode: 'COMPLIANCE' as const, until: this.plan.versionUntil } } : {};
    try {
      for (const [name, data] of files) if (name !== MANIFEST_FILE) await store.writeVersionFile(this.guestId, version, name, data, options);
      const metadata = this.plan && (await this.sink.retention?.keep(digests, this.plan, log));
      await this.sink.putManifest(this.lock, this.guestId, version, files.get(MANIFEST_FILE) as Buffer, { ...options, metadata });
    } catch (err) {
      // files of a version without its manifest; not when the guest lock was lost: they may be another run's by now
      if (!isColdvaultError(err, 'LOCKED')) await store.removeVersion(this.guestId, version).catch(() => undefined);
      throw err;
    }
    await this.sink.raiseLastVersion(this.guestId, version).catch((err: unknown) => {
      log.warn(`version ${version} of guest ${this.guestId} is published, but recording its number failed (${describeError(err)}); the next sync records it`);
    });
    catalog.recordVersion(manifest);
  }

  rotate(keep: number, log: TaskLog): Promise<number[]> {
    const { store, catalog } = this.sink;
    return pruneS3Guest({ store, catalog, guestId: this.guestId, options: { keepLast: keep }, log, heldGuestLock: true });
  }

  release(): Promise<void> {
    return this.lock.release();
  }
}
