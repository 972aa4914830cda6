/**
 * A guest with one raw disk on a real XFS with reflink (reflink-lab.ts), a real datastore on the same
 * filesystem, and nightly backups made the way the job flow with cold snapshots makes them: the engine's
 * own backupGuest (built code in dist/, whose chunk workers are .js files) with a `beforeArchive` that
 * clones the disk (FICLONE) into the snapshot folder and answers a read plan naming the base; after the
 * version is published, the snapshot becomes the base (renamed) and its base record is written.
 * The lab keeps the SHA-256 of every snapshot, and which chunks were written since the last one, so a
 * test can tell what a nightly had to read.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  copyFileSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { Datastore } from '../../dist/datastore/index.js';
import { Catalog } from '../../dist/catalog/index.js';
import { backupGuest, restoreGuest, verifyStore, writeBaseRecord, type DiskReadReport, type WorkerPool } from '../../dist/pipeline/index.js';
import { createTaskLog } from '../../dist/core/index.js';
import type { Seams } from '../../src/core/seams.js';
import type { ReflinkFs } from './reflink-lab.js';

export const CHUNK = 4 * 1024 * 1024;

export interface Nightly {
  version: number;
  /** the SHA-256 of the snapshot the version was read from */
  sha: string;
  read: DiskReadReport;
  lines: string[];
  /** chunks written since the snapshot before, and chunks holding data, at this snapshot */
  changed: Set<number>;
  allocated: Set<number>;
}

export interface NightlyOptions {
  full?: boolean;
  fullEvery?: number;
  seams?: Seams;
  /** where the snapshot is made (default the snapshot folder on the disk's XFS; elsewhere: a copy) */
  snapshotDir?: string;
  /** the engine's backupGuest to use (default: the built one) */
  backupGuest?: typeof backupGuest;
}

export class NightlyLab {
  readonly storeDir: string;
  readonly guestsDir: string;
  readonly storages: Record<string, string>;
  readonly diskPath: string;
  readonly snapDir: string;
  /** chunks holding any data now, and chunks written since the last snapshot */
  readonly allocated = new Set<number>();
  readonly dirty = new Set<number>();
  base?: { path: string; version: number; index: string };
  private run = 0;
  private restoreId = 9000;

  private constructor(
    readonly fs: ReflinkFs,
    readonly pool: WorkerPool,
    readonly id: string,
  ) {
    const root = join(fs.mnt, `lab-${id}`);
    this.storeDir = join(root, 'store');
    this.guestsDir = join(root, 'guests');
    this.storages = { local: join(root, 'vz') };
    this.diskPath = join(this.storages.local as string, 'images', id, `vm-${id}-disk-0.raw`);
    this.snapDir = join(this.storages.local as string, '.coldvault-snapshots', id);
  }

  static async create(fs: ReflinkFs, pool: WorkerPool, id: string, sizeBytes: number): Promise<NightlyLab> {
    const lab = new NightlyLab(fs, pool, id);
    mkdirSync(join(lab.storages.local as string, 'images', id), { recursive: true });
    mkdirSync(lab.snapDir, { recursive: true, mode: 0o700 });
    mkdirSync(lab.guestsDir, { recursive: true });
    await Datastore.init(lab.storeDir);
    writeFileSync(
      join(lab.guestsDir, `${id}.conf`),
      `name: g${id}\nmemory: 128\nscsi0: local:${id}/vm-${id}-disk-0.raw,size=${Math.ceil(sizeBytes / 1048576)}M\n`,
    );
    const fd = openSync(lab.diskPath, 'w', 0o600);
    ftruncateSync(fd, sizeBytes);
    closeSync(fd);
    return lab;
  }

  get size(): number {
    const fd = openSync(this.diskPath, 'r');
    try {
      return fstatSync(fd).size;
    } finally {
      closeSync(fd);
    }
  }

  /** Writes `data` at `offset` into the disk (as the guest would), past its end too. */
  write(offset: number, data: Buffer): void {
    const fd = openSync(this.diskPath, constants.O_RDWR);
    try {
      for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done, offset + done);
      fsyncSync(fd); // written back: the copy on write has happened (FICLONE would flush it too)
    } finally {
      closeSync(fd);
    }
    for (let c = Math.floor(offset / CHUNK); c <= Math.floor((offset + data.length - 1) / CHUNK); c++) {
      this.allocated.add(c);
      this.dirty.add(c);
    }
  }

  /** Bytes of the given chunks of the disk as it is now. */
  bytesOf(chunks: Iterable<number>): number {
    const size = this.size;
    let bytes = 0;
    for (const c of chunks) bytes += Math.max(0, Math.min(CHUNK, size - c * CHUNK));
    return bytes;
  }

  /** One nightly: snapshot, backup with a read plan, then the snapshot becomes the base. */
  async nightly(opts: NightlyOptions = {}): Promise<Nightly> {
    const snapshot = join(opts.snapshotDir ?? this.snapDir, `scsi0.run-${process.pid}-${++this.run}`);
    const lines: string[] = [];
    const log = createTaskLog((l) => lines.push(l.message));
    const store = await Datastore.open(this.storeDir, opts.seams);
    const catalog = await Catalog.open(store);
    let sha = '';
    const changed = new Set<number>();
    const allocated = new Set<number>();
    try {
      const result = await (opts.backupGuest ?? backupGuest)({
        store,
        catalog,
        pool: this.pool,
        guestsDir: this.guestsDir,
        storages: this.storages,
        guestId: this.id,
        node: 'test',
        zstdLevel: 1,
        log,
        full: opts.full,
        fullEvery: opts.fullEvery,
        beforeArchive: async (_log, disks) => {
          copyFileSync(disks[0]?.path as string, snapshot, constants.COPYFILE_FICLONE); // a clone where the filesystem can
          sha = createHash('sha256').update(readFileSync(snapshot)).digest('hex');
          for (const c of this.dirty) changed.add(c);
          for (const c of this.allocated) allocated.add(c);
          this.dirty.clear();
          const base = this.base && { snapshotPath: this.base.path, version: this.base.version, index: this.base.index };
          return new Map([['scsi0', { readPath: snapshot, base }]]);
        },
      });
      const read = result.reads[0] as DiskReadReport;
      await this.keepBase(store, snapshot, read);
      return { version: result.manifest.version, sha, read, lines, changed, allocated };
    } finally {
      catalog.close();
    }
  }

  /** What the job flow does after the publish: the snapshot becomes this datastore's base, with its record. */
  private async keepBase(store: Datastore, snapshot: string, read: DiskReadReport): Promise<void> {
    const path = join(dirname(snapshot), `scsi0.base-${store.identity.id}`);
    renameSync(snapshot, path);
    const next = read.nextBase;
    if (!next) throw new Error('the backup answered no next base record');
    await writeBaseRecord({ ...next, snapshotPath: path });
    this.base = { path, version: next.version, index: next.index };
  }

  /** Restores a version under a fresh id and returns the restored disk's SHA-256. */
  async restoreSha(version: number): Promise<string> {
    const newId = String(this.restoreId++);
    const store = await Datastore.open(this.storeDir);
    const { volumes } = await restoreGuest({
      store,
      pool: this.pool,
      guestId: this.id,
      version,
      newId,
      guestsDir: this.guestsDir,
      storages: this.storages,
      log: createTaskLog(),
    });
    const volume = [...volumes.values()][0] ?? '';
    const path = join(this.storages.local as string, 'images', newId, volume.split('/').pop() ?? '');
    const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
    rmSync(join(this.storages.local as string, 'images', newId), { recursive: true, force: true });
    rmSync(join(this.guestsDir, `${newId}.conf`), { force: true });
    return sha;
  }

  async verify(): Promise<{ ok: boolean; errors: string[] }> {
    const store = await Datastore.open(this.storeDir);
    const catalog = await Catalog.open(store);
    try {
      const r = await verifyStore({ store, catalog, pool: this.pool, log: createTaskLog() });
      return { ok: r.ok, errors: r.versions.flatMap((v: { errors: string[] }) => v.errors) };
    } finally {
      catalog.close();
    }
  }
}
