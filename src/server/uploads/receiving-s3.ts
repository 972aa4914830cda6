/**
 * An upload into a configured S3 datastore (the receiving store port, receiving.ts). It drives the
 * S3Target / VersionWriter a local backup into the bucket uses (pipeline/s3-target.ts), so one
 * implementation holds the rules: writer registration, guest lock, the gc generation, dead runs'
 * unpublished files removed, the version number, Object Lock retention, the manifest PUT last inside
 * both locks' `actWithin`, the catalog cache and keep-N rotation (pruneS3Guest). No space check: a
 * bucket has no free space to ask about (the estimate is ignored).
 *
 * Why a published version never misses a chunk (the S3 rule, datastore/s3/index.ts: no gc runs while
 * a writer is registered; every chunk a backup reuses is named by a version published before it
 * registered, or was stored by it):
 *  1. Open registers the writer and takes the guest lock BEFORE it reads the guest's newest published
 *     version, whose chunks are then known to be stored (with this node's known-chunk cache of the
 *     bucket, trusted only at the gc generation it was written at: datastore/s3/s3-known-cache.ts).
 *     `known` answers from those and the chunks PUT in this upload, never from a HEAD: any other
 *     digest is answered missing, and the sender
 *     sends it (it may already be in the bucket: the same bytes are PUT again).
 *  2. A chunk counts as stored once its PUT answered 200 (durable), and it is PUT only after the
 *     check (received.ts: CRC, decode, SHA-256 against its name; an encrypted blob its CRC and size).
 *  3. An index is taken only when every digest it names is known; finish checks each index against
 *     the manifest and every digest once more, then S3Version.publish PUTs the log and the manifest,
 *     refusing (LOCKED) when a gc ran while the upload was held up past its locks' life.
 * What any other end leaves: abort, idle timeout, shutdown: the version's files deleted, the locks
 * let go. kill -9 of either side: no manifest, so nothing visible; this server's lock objects name a
 * dead pid on this host (ignored by the next holder) or are released at the idle timeout; the next
 * upload or backup of the guest deletes the unpublished files; the chunks sent are unreferenced and
 * the next S3 gc deletes them.
 */
import { describeError, type TaskLog } from '../../core/index.js';
import { type Catalog, openCachedCatalog } from '../../catalog/index.js';
import { type ReceivedCheck, S3Datastore, type S3StoreSettings } from '../../datastore/index.js';
import { MANIFEST_FILE, type Manifest } from '../../format/index.js';
import { S3Target, type HeldTarget, type VersionWriter } from '../../pipeline/index.js';
import { checkPushedIndex, type FileKind } from './files.js';
import type { HoldRequest, ReceivingStore } from './receiving.js';

/**
 * How long open waits for the guest lock and the writer registration: two takers that try at once
 * may both back off for a moment (s3-locks.ts); a guest that stays busy (another upload) or a gc
 * that runs longer is LOCKED, as on a folder.
 */
const LOCK_WAIT_MS = 5_000;

/**
 * Opens the datastore for this upload alone (its chunk store remembers what this version knows is
 * stored) and its catalog cache in `stateDir`, holds the guest and opens a version; undone on failure.
 */
export async function receiveIntoS3(settings: S3StoreSettings, stateDir: string, req: HoldRequest, log: TaskLog): Promise<ReceivingStore> {
  const store = await S3Datastore.open(settings);
  let catalog: Catalog | undefined;
  let held: HeldTarget | undefined;
  try {
    catalog = await openCachedCatalog(store, store.identity.id, stateDir, log);
    held = await new S3Target(store, catalog).hold(req.guestId, LOCK_WAIT_MS, req.keep);
    return new S3Receiving(store, catalog, req.guestId, held, await held.open(req.bytesEstimate, log));
  } catch (err) {
    await held?.release();
    catalog?.close();
    store.close();
    throw err;
  }
}

class S3Receiving implements ReceivingStore {
  /** the log as sent: S3Version.publish PUTs it before the manifest */
  private logText = '';
  private pruned: number[] = [];
  /** what failed after the manifest was stored (the catalog or the rotation) */
  private afterPublish: unknown;

  constructor(
    private readonly store: S3Datastore,
    private readonly catalog: Catalog,
    private readonly guestId: string,
    private readonly held: HeldTarget,
    private readonly writer: VersionWriter,
  ) {}

  get version(): number {
    return this.writer.version;
  }

  /** the version's own folder: nothing in it is visible until its manifest is stored */
  get staged(): string {
    return this.published;
  }

  get published(): string {
    return `${this.store.dir}guests/${this.guestId}/${this.version}`;
  }

  known(digests: readonly string[]): Promise<string[]> {
    return this.writer.chunks.touchOrMissing(new Set(digests));
  }

  async putChunk(hex: string, blob: Buffer, check: ReceivedCheck): Promise<Uint8Array> {
    const checked = await check(hex, blob);
    await this.writer.chunks.insert(hex, checked);
    return checked;
  }

  async putFile(name: string, kind: FileKind, data: Buffer): Promise<void> {
    if (kind === 'log') {
      this.logText = data.toString('utf8');
      return;
    }
    if (kind === 'index') await checkPushedIndex(name, data, this.store.identity.chunkSize, (digests) => this.writer.chunks.missing(digests));
    await this.writer.writeFile(name, data);
  }

  readFile(name: string): Promise<Buffer> {
    return this.store.client.get(this.store.keys.file(this.guestId, this.version, name));
  }

  lastLook(digests: ReadonlySet<string>): Promise<string[]> {
    return this.writer.chunks.missing(digests);
  }

  /** S3Version.publish: its catalog record and rotation come with it; a failure after the manifest is stored is kept for record. */
  async publish(manifest: Manifest, log: TaskLog): Promise<void> {
    try {
      this.pruned = (await this.writer.publish(manifest, this.logText, log)).pruned;
    } catch (err) {
      if (!(await this.manifestStored())) throw err;
      this.afterPublish = err;
    }
  }

  record(manifest: Manifest, log: TaskLog): Promise<number[]> {
    if (this.afterPublish === undefined) return Promise.resolve(this.pruned);
    log.warn(`version ${manifest.version} is published, but recording it in the catalog or rotating failed: ${describeError(this.afterPublish)}`);
    return Promise.resolve([]);
  }

  /** Deletes the version's files unless its manifest was stored (S3Version.discard). */
  discard(): Promise<void> {
    return this.writer.discard().catch(() => undefined);
  }

  async release(): Promise<void> {
    try {
      await this.held.release();
    } finally {
      this.catalog.close();
      this.store.close();
    }
  }

  private async manifestStored(): Promise<boolean> {
    const head = await this.store.client.head(this.store.keys.file(this.guestId, this.version, MANIFEST_FILE)).catch(() => undefined);
    return head !== undefined;
  }
}
