/**
 * The conformance suite of the BackupTarget port (src/pipeline/backup-target.ts): one list of
 * behaviours, run against every implementation, as restic's backend test suite does. Each
 * implementation gives a factory (`make`) of a fresh target over a real datastore, the VersionSource
 * that reads what it published (version-source.ts), and `reopen` (the same datastore as a new run
 * sees it: new datastore object, client and catalog, nothing remembered in memory):
 *  - local:  LocalTarget over a datastore folder (Datastore.init) and its catalog
 *  - remote: RemoteTarget pushing into datastore `main` of a real `coldvault serve` on 127.0.0.1
 *            (test/targets/remote-lab.ts), with a token of role `backup` scoped to that store
 *  - s3:     S3Target over an S3Datastore in a fresh bucket of a real Ceph radosgw (test/helpers/radosgw.ts)
 * Versions are written as the backup flow writes them: real chunk blobs (encodeBlob, named by the
 * SHA-256 of their plain bytes), dedup by `touch`, `missing` as the last look, syncDirs, the config
 * and one fixed index per disk, then publish of a manifest that matches them (a node checks it).
 * Asserted on each: a published version is listed and reads back (manifest, indexes, every chunk
 * byte for byte); nothing is visible before publish; discard leaves nothing and its number is not
 * handed out again; touch / touchOrMissing / missing tell a stored chunk from an unknown one, in the
 * run that stored it and in a later run; a guest is held by one backup at a time (LOCKED); version
 * numbers 1 then 2, and keep=1 leaves only the newest.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freshBucket, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { client, makeRemoteLab, makeToken, type RemoteLab } from '../targets/remote-lab.js';
import { createTaskLog } from '../../dist/core/index.js';
import { Catalog } from '../../dist/catalog/index.js';
import { Datastore, S3Datastore, type S3StoreSettings } from '../../dist/datastore/index.js';
import {
  CHUNK_SIZE,
  chunkDigest,
  DATASTORE_FORMAT,
  DiskDigest,
  encodeBlob,
  encodeFixedIndex,
  INDEX_SUFFIX,
  maxBlobSize,
  VERSION_CONFIG_FILE,
  zeroChunkDigest,
  type FixedIndex,
  type Manifest,
} from '../../dist/format/index.js';
import {
  LocalTarget,
  localSource,
  RemoteTarget,
  remoteSource,
  S3Target,
  s3Source,
  type BackupTarget,
  type HeldTarget,
  type VersionSource,
  type VersionWriter,
} from '../../dist/pipeline/index.js';
import type { RemoteStore } from '../../dist/targets/index.js';

/** the node that writes the versions (the manifest's `node`; a remote target's `self`) */
const NODE = 'pve2';
const log = createTaskLog();

// ---------------------------------------------------------------------------------------------
// the implementations

interface Harness {
  target: BackupTarget;
  /** reads what the target published */
  readBack: VersionSource;
  /** a new target over the same datastore, as the next run (another process) sees it */
  reopen(): Promise<BackupTarget>;
  cleanup(): Promise<void>;
}

interface Implementation {
  name: string;
  /**
   * Where a second backup of a held guest is refused: at `hold` (local, S3: the guest lock is taken
   * there), or at `open` (remote: hold asks nothing of the node, the node locks the guest when the
   * upload opens; backup-target.ts).
   */
  locksAt: 'hold' | 'open';
  /** whether publish answers the versions keep-N pruned (remote: the node rotates and does not say) */
  answersPruned: boolean;
  /** once for the implementation's tests: the server it needs */
  start?(): Promise<void>;
  stop?(): Promise<void>;
  make(): Promise<Harness>;
}

const local: Implementation = {
  name: 'local',
  locksAt: 'hold',
  answersPruned: true,
  async make() {
    const dir = mkdtempSync(join(tmpdir(), 'cv-conform-local-'));
    const catalogs: Catalog[] = [];
    const targetOn = async (store: Datastore): Promise<BackupTarget> => {
      const catalog = await Catalog.open(store, { log });
      catalogs.push(catalog);
      return new LocalTarget(store, catalog);
    };
    const store = await Datastore.init(dir);
    return {
      target: await targetOn(store),
      readBack: localSource(store),
      reopen: async () => targetOn(await Datastore.open(dir)),
      cleanup: async () => {
        for (const c of catalogs) c.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

const remoteState: { lab?: RemoteLab; serve?: ServeProcess; token?: string } = {};

const remote: Implementation = {
  name: 'remote',
  locksAt: 'open',
  answersPruned: false,
  async start() {
    const lab = await makeRemoteLab();
    remoteState.lab = lab;
    const config = await lab.serveConfig('conformance');
    remoteState.token = await makeToken(config, NODE, 'backup', 'main');
    remoteState.serve = await startServe(['--config', config.path, '--listen', '127.0.0.1:0']);
  },
  async stop() {
    await remoteState.serve?.stop();
    remoteState.lab?.cleanup();
  },
  async make() {
    const { serve, token } = remoteState;
    if (!serve || !token) throw new Error('the remote implementation was not started');
    const clients: RemoteStore[] = [];
    const targetOn = (): { target: BackupTarget; store: RemoteStore } => {
      const store = client(serve.url, token);
      clients.push(store);
      return { store, target: new RemoteTarget({ remote: store, nodeName: 'node1', self: NODE }) };
    };
    const first = targetOn();
    return {
      target: first.target,
      readBack: remoteSource(first.store, 'node1'),
      reopen: () => Promise.resolve(targetOn().target),
      cleanup: () => {
        for (const c of clients) c.close();
        return Promise.resolve();
      },
    };
  },
};

const s3State: { rgw?: Radosgw } = {};

const s3: Implementation = {
  name: 's3',
  locksAt: 'hold',
  answersPruned: true,
  async start() {
    s3State.rgw = await startRadosgw();
  },
  stop() {
    s3State.rgw?.stop();
    return Promise.resolve();
  },
  async make() {
    const { rgw } = s3State;
    if (!rgw) throw new Error('the s3 implementation was not started');
    const settings: S3StoreSettings = {
      endpoint: rgw.endpoint,
      region: rgw.region,
      bucket: freshBucket('conform'),
      prefix: 'p/',
      pathStyle: true,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    };
    const state = mkdtempSync(join(tmpdir(), 'cv-conform-s3-'));
    const stores: S3Datastore[] = [];
    const catalogs: Catalog[] = [];
    const targetOn = async (store: S3Datastore): Promise<BackupTarget> => {
      stores.push(store);
      const catalog = await Catalog.open(store, { file: join(state, `catalog-${catalogs.length}.sqlite`), log });
      catalogs.push(catalog);
      return new S3Target(store, catalog);
    };
    const store = await S3Datastore.init(settings);
    return {
      target: await targetOn(store),
      readBack: s3Source(store),
      reopen: async () => targetOn(await S3Datastore.open(settings)),
      cleanup: () => {
        for (const c of catalogs) c.close();
        for (const s of stores) s.close();
        rmSync(state, { recursive: true, force: true });
        return Promise.resolve();
      },
    };
  },
};

const IMPLEMENTATIONS: Implementation[] = [local, remote, s3];

// ---------------------------------------------------------------------------------------------
// versions as the backup flow writes them

interface Chunk {
  hex: string;
  digest: Buffer;
  blob: Buffer;
}

interface Disk {
  key: string;
  indexName: string;
  size: number;
  /** in disk order; null: an all-zero chunk (nothing stored) */
  chunks: Array<Chunk | null>;
  zeroBytes: number;
}

interface GuestData {
  guestId: string;
  /** the manifest's time: when the backup started */
  time: string;
  config: string;
  disks: Disk[];
}

let lastGuest = 300;
/** a guest id no other test of the file uses (the remote implementation's store is shared by its tests) */
const newGuestId = (): string => String(++lastGuest);

const chunkOf = (plain: Buffer): Chunk => {
  const digest = chunkDigest(plain);
  return { hex: digest.toString('hex'), digest, blob: encodeBlob(plain, 3) };
};

/** a disk of these parts: random bytes (their length) or a zero chunk; every part but the last is a whole chunk */
function makeDisk(key: string, parts: Array<number | 'zero'>, reuse: Array<Chunk | null> = []): Disk {
  let size = 0;
  let zeroBytes = 0;
  const chunks = parts.map((part, i) => {
    const length = part === 'zero' ? CHUNK_SIZE : part;
    if (i < parts.length - 1 && length !== CHUNK_SIZE) throw new Error('only the last chunk of a disk may be short');
    size += length;
    if (part === 'zero') {
      zeroBytes += length;
      return null;
    }
    return reuse[i] ?? chunkOf(randomBytes(length));
  });
  return { key, indexName: `${key}${INDEX_SUFFIX}`, size, chunks, zeroBytes };
}

/** two disks: scsi0 of 2 chunks and a 1 MiB tail with one all-zero chunk, efidisk0 of 128 KiB */
function makeGuest(guestId = newGuestId()): GuestData {
  return {
    guestId,
    time: new Date().toISOString(),
    config: `name: vm${guestId}\ncores: 1\nmemory: 256\nscsi0: local:${guestId}/vm-${guestId}-disk-0.raw,size=9M\n`,
    disks: [makeDisk('scsi0', [CHUNK_SIZE, 'zero', 1024 * 1024]), makeDisk('efidisk0', [128 * 1024])],
  };
}

/** the next state of the guest: chunk 0 of scsi0 rewritten, the rest as it was */
function changed(data: GuestData): GuestData {
  const [scsi0, efi] = data.disks as [Disk, Disk];
  return {
    ...data,
    time: new Date(Date.parse(data.time) + 1000).toISOString(),
    disks: [makeDisk('scsi0', [CHUNK_SIZE, 'zero', 1024 * 1024], [null, ...scsi0.chunks.slice(1)]), efi],
  };
}

function distinctChunks(data: GuestData): Chunk[] {
  const byHex = new Map<string, Chunk>();
  for (const disk of data.disks) for (const c of disk.chunks) if (c) byHex.set(c.hex, c);
  return [...byHex.values()];
}

const indexOf = (disk: Disk): FixedIndex => ({ chunkSize: CHUNK_SIZE, size: disk.size, digests: disk.chunks.map((c) => c?.digest ?? null) });

function manifestOf(data: GuestData, version: number): Manifest {
  return {
    format: DATASTORE_FORMAT,
    guestId: data.guestId,
    guestName: `vm${data.guestId}`,
    version,
    time: data.time,
    node: NODE,
    config: data.config,
    disks: data.disks.map((disk) => {
      const sha = new DiskDigest();
      disk.chunks.forEach((c, i) => sha.add(c?.digest ?? zeroChunkDigest(Math.min(CHUNK_SIZE, disk.size - i * CHUNK_SIZE))));
      return {
        key: disk.key,
        volume: `local:${data.guestId}/vm-${data.guestId}-${disk.key}.raw`,
        storage: 'local',
        format: 'raw',
        size: disk.size,
        index: disk.indexName,
        sha256: sha.hex(),
        chunkSize: CHUNK_SIZE,
        chunkCount: disk.chunks.length,
        zeroChunks: disk.chunks.filter((c) => c === null).length,
        zeroBytes: disk.zeroBytes,
      };
    }),
    excluded: [],
    storedBytes: distinctChunks(data).reduce((s, c) => s + c.blob.length, 0),
    newBytes: data.disks.reduce((s, d) => s + d.size - d.zeroBytes, 0),
    durationSeconds: 1,
  };
}

const estimate = (data: GuestData): number => data.disks.reduce((s, d) => s + d.size, 0);

/** The chunks (each touched, inserted when not there), the last look, syncDirs, the config, the indexes: all but the publish. */
async function writeVersion(writer: VersionWriter, data: GuestData): Promise<{ manifest: Manifest; inserted: string[] }> {
  const chunks = distinctChunks(data);
  const inserted: string[] = [];
  for (const c of chunks) {
    if (await writer.chunks.touch(c.hex)) continue;
    await writer.beforeWrite?.(c.blob.length);
    await writer.chunks.insert(c.hex, c.blob);
    inserted.push(c.hex);
  }
  expect(await writer.chunks.missing(chunks.map((c) => c.hex))).toEqual([]);
  await writer.chunks.syncDirs();
  await writer.writeFile(VERSION_CONFIG_FILE, data.config);
  for (const disk of data.disks) await writer.writeFile(disk.indexName, encodeFixedIndex(indexOf(disk)));
  return { manifest: manifestOf(data, writer.version), inserted };
}

/** hold, open, write, publish, release: one whole backup; what publish answered */
async function backup(target: BackupTarget, data: GuestData, keep?: number): Promise<{ version: number; pruned: number[]; inserted: string[] }> {
  const held = await target.hold(data.guestId, 0, keep);
  try {
    const writer = await held.open(estimate(data), log);
    try {
      const { manifest, inserted } = await writeVersion(writer, data);
      const { pruned } = await writer.publish(manifest, `backup of guest ${data.guestId}\n`, log);
      return { version: writer.version, pruned, inserted };
    } catch (err) {
      await writer.discard();
      throw err;
    }
  } finally {
    await held.release();
  }
}

/** The version reads back through `source` as written: manifest, every index, every chunk byte for byte. */
async function expectReadsBack(source: VersionSource, data: GuestData, version: number): Promise<void> {
  expect(await source.readManifest(data.guestId, version)).toEqual(manifestOf(data, version));
  const offset = 512;
  const buf = new ArrayBuffer(offset + maxBlobSize(CHUNK_SIZE));
  for (const disk of data.disks) {
    expect(await source.readIndex(data.guestId, version, disk.indexName)).toEqual(indexOf(disk));
    for (const c of disk.chunks) {
      if (!c) continue;
      const length = await source.chunks.readInto(c.hex, buf, offset);
      expect(Buffer.from(buf, offset, length).equals(c.blob), `chunk ${c.hex} of ${disk.key} reads back byte for byte`).toBe(true);
    }
  }
}

async function expectInvisible(source: VersionSource, guestId: string, version: number): Promise<void> {
  expect(await source.listVersionNumbers(guestId)).not.toContain(version);
  await expect(source.readManifest(guestId, version)).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
}

// ---------------------------------------------------------------------------------------------
// the suite

describe.each(IMPLEMENTATIONS)('BackupTarget conformance: $name', (impl) => {
  let h: Harness;

  beforeAll(async () => {
    await impl.start?.();
  }, 600_000);
  afterAll(async () => {
    await impl.stop?.();
  }, 120_000);
  beforeEach(async () => {
    h = await impl.make();
  });
  afterEach(async () => {
    await h?.cleanup();
  });

  it('a published version is listed and reads back: its manifest, its indexes and every chunk byte for byte', async () => {
    const data = makeGuest();
    const { version, pruned, inserted } = await backup(h.target, data);
    expect(version).toBe(1);
    expect(pruned).toEqual([]);
    expect(inserted.sort()).toEqual(
      distinctChunks(data)
        .map((c) => c.hex)
        .sort(),
    ); // a new datastore has none of them
    expect(await h.readBack.listVersionNumbers(data.guestId)).toEqual([1]);
    expect(await h.readBack.listGuestIds()).toContain(data.guestId);
    await expectReadsBack(h.readBack, data, 1);
  });

  it('nothing of a version is visible before its publish; after it, the version is there whole', async () => {
    const data = makeGuest();
    const held = await h.target.hold(data.guestId, 0, undefined);
    try {
      const writer = await held.open(estimate(data), log);
      const { manifest } = await writeVersion(writer, data);
      await expectInvisible(h.readBack, data.guestId, writer.version);
      expect(await h.readBack.listVersionNumbers(data.guestId)).toEqual([]);
      await writer.publish(manifest, 'log\n', log);
      expect(await h.readBack.listVersionNumbers(data.guestId)).toEqual([writer.version]);
      expect(await h.readBack.readManifest(data.guestId, writer.version)).toEqual(manifest);
    } finally {
      await held.release();
    }
  });

  // Found by this suite: the folder store recorded last-version only at publish and handed a discarded
  // run's number out again; takeVersionNumber records it as it hands it out (datastore/versions.ts).
  it('discard before publish leaves no version, and the next open takes a higher number (numbers are never handed out twice)', async () => {
    const data = makeGuest();
    const first = await h.target.hold(data.guestId, 0, undefined);
    let discarded: number;
    try {
      const writer = await first.open(estimate(data), log);
      discarded = writer.version;
      await writeVersion(writer, data);
      await writer.discard();
    } finally {
      await first.release();
    }
    await expectInvisible(h.readBack, data.guestId, discarded);
    expect(await h.readBack.listVersionNumbers(data.guestId)).toEqual([]);

    const { version } = await backup(h.target, data);
    expect(version).toBeGreaterThan(discarded);
    expect(await h.readBack.listVersionNumbers(data.guestId)).toEqual([version]);
    await expectReadsBack(h.readBack, data, version);
  });

  it('touch, touchOrMissing and missing tell a stored chunk from an unknown one, in the run that stored it and in the next run', async () => {
    const data = makeGuest();
    const [stored] = distinctChunks(data) as [Chunk];
    const unknown = chunkDigest(randomBytes(64)).toString('hex');

    const held = await h.target.hold(data.guestId, 0, undefined);
    try {
      const writer = await held.open(estimate(data), log);
      const sink = writer.chunks;
      expect(await sink.touch(stored.hex)).toBe(false); // not inserted yet
      expect(await sink.missing([stored.hex, unknown])).toEqual([stored.hex, unknown]);
      await sink.insert(stored.hex, stored.blob);
      await sink.syncDirs();
      expect(await sink.touch(stored.hex)).toBe(true);
      expect(await sink.touch(unknown)).toBe(false);
      expect(await sink.touchOrMissing([stored.hex, unknown])).toEqual([unknown]);
      expect(await sink.missing([stored.hex, unknown])).toEqual([unknown]);
      const { manifest } = await writeVersion(writer, data);
      await writer.publish(manifest, 'log\n', log);
    } finally {
      await held.release();
    }

    // the next run (a new target over the same datastore) knows the chunks of the published version
    const next = await h.reopen();
    const again = await next.hold(data.guestId, 0, undefined);
    try {
      const writer = await again.open(estimate(data), log);
      try {
        const all = distinctChunks(data).map((c) => c.hex);
        expect(await writer.chunks.touch(stored.hex)).toBe(true);
        expect(await writer.chunks.touch(unknown)).toBe(false);
        expect(await writer.chunks.touchOrMissing([...all, unknown])).toEqual([unknown]);
        expect(await writer.chunks.missing([...all, unknown])).toEqual([unknown]);
      } finally {
        await writer.discard();
      }
    } finally {
      await again.release();
    }
  });

  it('a second backup of a held guest is refused with LOCKED (lockWaitMs 0); once the first is released, a hold succeeds', async () => {
    const data = makeGuest();
    const first = await h.target.hold(data.guestId, 0, undefined);
    let firstWriter: VersionWriter | undefined;
    let second: HeldTarget | undefined;
    try {
      firstWriter = await first.open(estimate(data), log);
      if (impl.locksAt === 'hold') {
        await expect(h.target.hold(data.guestId, 0, undefined)).rejects.toMatchObject({ code: 'LOCKED' });
      } else {
        second = await h.target.hold(data.guestId, 0, undefined);
        await expect(second.open(estimate(data), log)).rejects.toMatchObject({ code: 'LOCKED' });
        await second.release();
      }
      // another guest is not held by it
      const other = await h.target.hold(newGuestId(), 0, undefined);
      await other.release();
    } finally {
      await firstWriter?.discard();
      await first.release();
    }
    const { version } = await backup(h.target, data);
    expect(await h.readBack.listVersionNumbers(data.guestId)).toEqual([version]);
  });

  it('two versions in a row are numbered 1 and 2; keep=1 at the second publish leaves only version 2, whole', async () => {
    const v1 = makeGuest();
    const first = await backup(h.target, v1);
    expect(first.version).toBe(1);
    expect(await h.readBack.listVersionNumbers(v1.guestId)).toEqual([1]);

    const v2 = changed(v1);
    const second = await backup(h.target, v2, 1);
    expect(second.version).toBe(2);
    // only the rewritten chunk is new: the others were found and touched
    expect(second.inserted).toEqual([v2.disks[0]!.chunks[0]!.hex]);
    if (impl.answersPruned) expect(second.pruned).toEqual([1]);
    expect(await h.readBack.listVersionNumbers(v1.guestId)).toEqual([2]);
    await expect(h.readBack.readManifest(v1.guestId, 1)).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
    await expectReadsBack(h.readBack, v2, 2);
  });
});
