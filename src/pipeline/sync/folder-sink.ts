/**
 * A folder datastore as the target of a sync (Datastore): what a sync into a folder always did.
 *
 * Crash safety: a version becomes visible only when everything it references is durable.
 *  1. Every chunk is written durably under a temp name and renamed (ChunkStore.insert); the chunk
 *     folders are fsynced (syncDirs) before the publish; every chunk is then looked at once more.
 *  2. The version's files are written fsynced into a staging folder (`.staging-*` with an `.owner`),
 *     the manifest last; publish fsyncs it, renames it to the number and fsyncs the guest folder.
 *  So a sync killed (kill -9, power cut, the source gone) at any point leaves no version, or a whole
 *  one: a staging folder that cleanupStale removes at the next sync or backup of that guest, a stale
 *  guest lock and writer registration (their process is dead: taken over, dropped), and chunks no
 *  version references, which gc collects.
 * Why no interleaving with local prune and gc loses a chunk (the gc rule of datastore/gc.ts, which a
 * sync follows as a backup or an upload does): the writer registration is made under the guest lock
 * before any chunk is looked at and released after the publish; every chunk of the version gets a
 * time after it (a present chunk is touched, a fetched one is written then). A gc either marks the
 * version (published before it listed) or runs while the sync is registered, and then its cutoff is
 * before every one of those times. The one window inside a single touch (gc deletes the inode the
 * touch lands on) is closed by the last look of 1 (`confirm`): a chunk gone is fetched again before
 * the publish. Prune removes only published versions and the version pulled is invisible until its
 * rename; the keep-N rotation runs after it under the guest's retention lock.
 * Space: every chunk's bytes are counted against the free space before it is written (NO_SPACE
 * before the disk is full: space.ts spaceGuard).
 */
import type { TaskLog } from '../../core/index.js';
import type { Catalog } from '../../catalog/index.js';
import type { Datastore, HeldLock, ReceivedCheck } from '../../datastore/index.js';
import { MANIFEST_FILE, type Manifest } from '../../format/index.js';
import { rotateGuest } from '../prune.js';
import { spaceGuard } from '../space.js';
import type { GuestSink, SyncSink } from './sink.js';

export class FolderSink implements SyncSink {
  readonly writesInFlight = 1;
  private readonly guard: (bytes: number) => Promise<void>;

  constructor(
    readonly store: Datastore,
    readonly catalog: Catalog,
  ) {
    this.guard = spaceGuard(store.dir);
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

  begin(): Promise<void> {
    return Promise.resolve();
  }

  end(): Promise<void> {
    return Promise.resolve();
  }

  async holdGuest(guestId: string, purpose: string, lockWaitMs: number): Promise<GuestSink> {
    const lock = await this.store.locks.acquire(`guest-${guestId}`, purpose, lockWaitMs);
    let writer: HeldLock | undefined;
    try {
      writer = await this.store.locks.registerWriter(purpose);
      await this.store.cleanupStale(guestId);
      const numbers = await this.store.listVersionNumbers(guestId);
      const highest = (await this.store.nextVersionNumber(guestId)) - 1;
      return new FolderGuest(this, guestId, numbers, highest, { writer, lock });
    } catch (err) {
      await writer?.release();
      await lock.release();
      throw err;
    }
  }

  /** NO_SPACE before the store's disk fills up */
  checkSpace(bytes: number): Promise<void> {
    return this.guard(bytes);
  }
}

class FolderGuest implements GuestSink {
  constructor(
    private readonly sink: FolderSink,
    private readonly guestId: string,
    readonly numbers: number[],
    readonly highest: number,
    /** the writer registration and the guest lock it was made under */
    private readonly held: { writer: HeldLock; lock: HeldLock },
  ) {}

  async manifestTime(version: number): Promise<string> {
    return (await this.sink.store.readManifest(this.guestId, version)).time;
  }

  where(version: number): string {
    return `'${this.sink.store.versionDir(this.guestId, version)}'`;
  }

  startVersion(_version: number, digests: readonly string[]): Promise<string[]> {
    return this.sink.store.chunks.touchOrMissing(digests);
  }

  async storeChunk(hex: string, blob: Uint8Array, check: ReceivedCheck): Promise<Uint8Array> {
    await this.sink.checkSpace(blob.length);
    return this.sink.store.chunks.insertReceived(hex, blob, check);
  }

  async confirm(digests: readonly string[]): Promise<string[]> {
    await this.sink.store.chunks.syncDirs();
    return this.sink.store.chunks.missing(digests);
  }

  async publish(version: number, files: ReadonlyMap<string, Buffer>, manifest: Manifest): Promise<void> {
    const { store, catalog } = this.sink;
    const staging = await store.createStaging(this.guestId);
    try {
      for (const [name, data] of files) if (name !== MANIFEST_FILE) await staging.writeFile(name, data);
      await staging.writeFile(MANIFEST_FILE, files.get(MANIFEST_FILE) as Buffer);
      await store.checkpoint('sync:publish');
      await store.publish(staging, version);
    } catch (err) {
      await store.discardStaging(staging).catch(() => undefined);
      throw err;
    }
    catalog.recordVersion(manifest);
  }

  rotate(keep: number, log: TaskLog): Promise<number[]> {
    const { store, catalog } = this.sink;
    return rotateGuest({ store, catalog, guestId: this.guestId, options: { keepLast: keep }, log });
  }

  async release(): Promise<void> {
    try {
      await this.held.writer.release();
    } finally {
      await this.held.lock.release();
    }
  }
}
