/**
 * An upload into a folder datastore (the receiving store port, receiving.ts): the guest lock, a
 * writer registration (the gc rule, datastore/gc.ts), stale staging of dead writers removed, a
 * staging folder and a version number at open; a space guard per write; chunks inserted after their
 * check, present ones touched; finish syncs the chunk folders, looks at every chunk once more, writes
 * the manifest and renames the staging folder (atomic). Why this never publishes a version missing a
 * chunk, and what a crash leaves, is written in index.ts.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ColdvaultError, describeError, formatBytes, ioError, type TaskLog } from '../../core/index.js';
import { Catalog } from '../../catalog/index.js';
import type { Datastore, HeldLock, ReceivedCheck, Staging } from '../../datastore/index.js';
import { encodeManifest, MANIFEST_FILE, type Manifest } from '../../format/index.js';
import { rotateGuest, SPACE_RESERVE, spaceGuard } from '../../pipeline/index.js';
import { checkPushedIndex, type FileKind } from './files.js';
import type { HoldRequest, ReceivingStore } from './receiving.js';

/** Refuses early when the estimate does not fit, then holds the guest; undone on failure. */
export async function receiveIntoFolder(store: Datastore, req: HoldRequest): Promise<ReceivingStore> {
  await checkSpace(store, req.bytesEstimate, req.storeName);
  const lock = await store.locks.acquire(`guest-${req.guestId}`, req.purpose);
  let writer: HeldLock | undefined;
  try {
    writer = await store.locks.registerWriter(req.purpose);
    await store.checkpoint('upload:registered');
    await store.cleanupStale(req.guestId);
    const version = await store.takeVersionNumber(req.guestId);
    const staging = await store.createStaging(req.guestId);
    return new FolderReceiving(store, req, { lock, writer, staging }, version);
  } catch (err) {
    await writer?.release();
    await lock.release();
    throw err;
  }
}

class FolderReceiving implements ReceivingStore {
  private readonly guard: (bytes: number) => Promise<void>;

  constructor(
    private readonly store: Datastore,
    private readonly req: HoldRequest,
    private readonly held: { lock: HeldLock; writer: HeldLock; staging: Staging },
    readonly version: number,
  ) {
    this.guard = spaceGuard(store.dir);
  }

  get staged(): string {
    return this.held.staging.dir;
  }

  get published(): string {
    return this.store.versionDir(this.req.guestId, this.version);
  }

  known(digests: readonly string[]): Promise<string[]> {
    return this.store.chunks.touchOrMissing(new Set(digests));
  }

  async putChunk(hex: string, blob: Buffer, check: ReceivedCheck): Promise<Uint8Array> {
    await this.guard(blob.length);
    return this.store.chunks.insertReceived(hex, blob, check);
  }

  async putFile(name: string, kind: FileKind, data: Buffer): Promise<void> {
    if (kind === 'index') await checkPushedIndex(name, data, this.store.identity.chunkSize, (digests) => this.store.chunks.touchOrMissing(digests));
    await this.guard(data.length);
    await this.held.staging.writeFile(name, data);
  }

  async readFile(name: string): Promise<Buffer> {
    try {
      return await readFile(join(this.held.staging.dir, name));
    } catch (err) {
      throw ioError(`reading the uploaded ${name} in '${this.held.staging.dir}'`, err);
    }
  }

  async lastLook(digests: ReadonlySet<string>): Promise<string[]> {
    await this.store.chunks.syncDirs();
    return this.store.chunks.missing(digests);
  }

  async publish(manifest: Manifest): Promise<void> {
    await this.held.staging.writeFile(MANIFEST_FILE, encodeManifest(manifest));
    await this.store.checkpoint('upload:publish');
    await this.store.publish(this.held.staging, this.version);
  }

  /** The catalog and the keep-N rotation; a failure is a WARN line (the catalog catches up when next opened). */
  async record(manifest: Manifest, log: TaskLog): Promise<number[]> {
    try {
      await this.store.checkpoint('upload:published');
      const catalog = await Catalog.open(this.store, { log });
      try {
        catalog.recordVersion(manifest);
        const keep = this.req.keep;
        return keep ? await rotateGuest({ store: this.store, catalog, guestId: manifest.guestId, options: { keepLast: keep }, log }) : [];
      } finally {
        catalog.close();
      }
    } catch (err) {
      log.warn(`version ${manifest.version} is published, but recording it in the catalog or rotating failed: ${describeError(err)}`);
      return [];
    }
  }

  async discard(): Promise<void> {
    await this.store.discardStaging(this.held.staging).catch(() => undefined);
  }

  async release(): Promise<void> {
    await this.held.writer.release();
    await this.held.lock.release();
  }
}

/** Refuses early, before anything is written, when the estimate does not fit beside the reserve. */
async function checkSpace(store: Datastore, bytesEstimate: number, name: string): Promise<void> {
  const { free } = await store.space();
  if (free >= bytesEstimate + SPACE_RESERVE) return;
  throw new ColdvaultError(
    'NO_SPACE',
    `not enough space in datastore '${name}' for this upload: it needs ${formatBytes(bytesEstimate + SPACE_RESERVE)} (estimate plus reserve), available ${formatBytes(free)}`,
  );
}
