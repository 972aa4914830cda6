/**
 * The local target of a backup (backup-target.ts): a datastore folder on this node. Guest lock and
 * writer registration from hold to release; a staging folder renamed to the version at publish
 * (datastore/versions.ts); the catalog and keep-N rotation after it. Named checkpoints let the crash
 * tests stop the process at each step.
 */
import { join } from 'node:path';
import type { TaskLog } from '../core/index.js';
import { encodeManifest, MANIFEST_FILE, type Manifest, VERSION_LOG_FILE } from '../format/index.js';
import { type Datastore, type Staging, writeFileDurable } from '../datastore/index.js';
import type { Catalog } from '../catalog/index.js';
import type { BackupTarget, HeldTarget, VersionWriter } from './backup-target.js';
import { rotateGuest } from './prune.js';
import { checkBackupSpace, spaceGuard, type SpaceDisk } from './space.js';
import type { ChunkCodec } from './worker-pool.js';

export class LocalTarget implements BackupTarget {
  constructor(
    readonly store: Datastore,
    readonly catalog: Catalog,
  ) {}

  get label(): string {
    return `'${this.store.dir}'`;
  }

  get datastoreId(): string {
    return this.store.identity.id;
  }

  async hold(guestId: string, lockWaitMs: number, keep: number | undefined): Promise<HeldTarget> {
    const lock = await this.store.locks.acquire(`guest-${guestId}`, `backup of guest ${guestId}`, lockWaitMs);
    let writer: { release(): Promise<void> } | undefined;
    try {
      writer = await this.store.locks.registerWriter(`backup of guest ${guestId}`);
      await this.store.checkpoint('backup:registered');
      await this.store.cleanupStale(guestId);
    } catch (err) {
      await writer?.release();
      await lock.release();
      throw err;
    }
    const held = writer;
    return {
      checkSpace: (disks: SpaceDisk[], pool: ChunkCodec, log: TaskLog) => checkBackupSpace(this.store, disks, pool, log, guestId),
      open: async () => new LocalVersion(this, guestId, keep, await this.store.takeVersionNumber(guestId), await this.store.createStaging(guestId)),
      release: async () => {
        await held.release();
        await lock.release();
      },
    };
  }
}

class LocalVersion implements VersionWriter {
  readonly beforeWrite: (blobBytes: number) => Promise<void>;

  constructor(
    private readonly target: LocalTarget,
    private readonly guestId: string,
    private readonly keep: number | undefined,
    readonly version: number,
    private staging: Staging | undefined,
  ) {
    this.beforeWrite = spaceGuard(target.store.dir);
  }

  get where(): string {
    return `'${this.target.store.versionDir(this.guestId, this.version)}'`;
  }

  get chunks(): Datastore['chunks'] {
    return this.target.store.chunks;
  }

  async writeFile(name: string, data: Uint8Array | string): Promise<void> {
    await this.stagingOrThrow().writeFile(name, data);
  }

  checkpoint(name: string): Promise<void> {
    return this.target.store.checkpoint(name);
  }

  async publish(manifest: Manifest, logText: string, log: TaskLog): Promise<{ pruned: number[]; dir: string }> {
    const { store, catalog } = this.target;
    const staging = this.stagingOrThrow();
    await staging.writeFile(MANIFEST_FILE, encodeManifest(manifest));
    await staging.writeFile(VERSION_LOG_FILE, logText);
    await store.checkpoint('backup:publish');
    await store.publish(staging, this.version);
    this.staging = undefined;
    await store.checkpoint('backup:published');
    catalog.recordVersion(manifest);
    const pruned = this.keep ? await rotateGuest({ store, catalog, guestId: this.guestId, options: { keepLast: this.keep }, log }) : [];
    return { pruned, dir: store.versionDir(this.guestId, this.version) };
  }

  async finalLog(logText: string): Promise<void> {
    const path = join(this.target.store.versionDir(this.guestId, this.version), VERSION_LOG_FILE);
    await writeFileDurable(path, Buffer.from(logText)).catch(() => undefined);
  }

  async discard(): Promise<void> {
    if (this.staging) await this.target.store.discardStaging(this.staging).catch(() => undefined);
    this.staging = undefined;
  }

  private stagingOrThrow(): Staging {
    if (!this.staging) throw new Error(`version ${this.version} of guest ${this.guestId} was already published or discarded`);
    return this.staging;
  }
}
