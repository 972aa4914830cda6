/**
 * Prune and gc on an S3 datastore (a REAL Ceph radosgw), in process with the engine's own functions
 * (dist/: the chunk workers are .js files): gc removes exactly what no version names; it does not run
 * while a backup is registered; and a backup held up past its lock's life while a gc ran refuses to
 * publish a version whose reused chunks that gc may have removed (src/datastore/s3/index.ts, point 4).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../dist/catalog/index.js';
import { createTaskLog } from '../../dist/core/index.js';
import { collectS3Garbage, LockDir, S3Datastore } from '../../dist/datastore/index.js';
import type { S3StoreSettings } from '../../src/datastore/index.js';
import { backupGuest, pruneS3Guest, restoreGuest, S3Target, s3Source, WorkerPool } from '../../dist/pipeline/index.js';
import { freshBucket, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { block } from '../helpers/store-lab.js';

let rgw: Radosgw;
let root: string;
let pool: WorkerPool;
let settings: S3StoreSettings;
const log = createTaskLog();
const storages = (): Record<string, string> => ({ local: join(root, 'vz') });
const guestsDir = (): string => join(root, 'guests');

function writeGuest(id: string, blocks: number[]): string {
  const dir = join(root, 'vz', 'images', id);
  mkdirSync(dir, { recursive: true });
  const data = Buffer.concat(blocks.map((n) => block(n)));
  writeFileSync(join(dir, `vm-${id}-disk-0.raw`), data);
  writeFileSync(join(guestsDir(), `${id}.conf`), `name: g${id}\nmemory: 128\nscsi0: local:${id}/vm-${id}-disk-0.raw,size=${blocks.length * 4}M\n`);
  return createHash('sha256').update(data).digest('hex');
}

/** `f` on a freshly opened store and its catalog (as a process would), closed after. */
async function withOpened<T>(open: () => Promise<S3Datastore>, catalogName: string, f: (store: S3Datastore, catalog: Catalog) => Promise<T>): Promise<T> {
  const store = await open();
  const catalog = await Catalog.open(store, { file: join(root, `catalog-${catalogName}.sqlite`) });
  try {
    return await f(store, catalog);
  } finally {
    catalog.close();
    store.close();
  }
}

const withStore = <T>(prefix: string, f: (store: S3Datastore, catalog: Catalog) => Promise<T>): Promise<T> =>
  withOpened(() => S3Datastore.open({ ...settings, prefix }), prefix.replace(/\W/g, ''), f);

/** A backup of guest `id` through the S3 target, in process; `beforePublish` sees the open store. */
async function backupInto(
  store: S3Datastore,
  catalog: Catalog,
  id: string,
  beforePublish?: (store: S3Datastore) => Promise<void>,
  lockDays?: number,
): Promise<number> {
  const r = await backupGuest({
    target: new S3Target(store, catalog, { lockDays }),
    pool,
    guestsDir: guestsDir(),
    storages: storages(),
    guestId: id,
    node: 'test',
    zstdLevel: 1,
    log,
    beforePublish: beforePublish ? () => beforePublish(store) : undefined,
  });
  return r.manifest.version as number;
}

const backup = (prefix: string, id: string, beforePublish?: (store: S3Datastore) => Promise<void>) =>
  withStore(prefix, (store, catalog) => backupInto(store, catalog, id, beforePublish));

async function restoreSha(prefix: string, id: string, version: number, newId: string): Promise<string> {
  const store = await S3Datastore.open({ ...settings, prefix });
  try {
    const { volumes } = await restoreGuest({
      source: s3Source(store),
      locks: new LockDir(join(root, 'locks')),
      pool,
      guestId: id,
      version,
      newId,
      guestsDir: guestsDir(),
      storages: storages(),
      log,
    });
    const volume = [...volumes.values()][0] ?? '';
    return createHash('sha256')
      .update(readFileSync(join(root, 'vz', 'images', newId, volume.split('/').pop() ?? '')))
      .digest('hex');
  } finally {
    store.close();
  }
}

async function chunkKeys(prefix: string): Promise<string[]> {
  return withStore(prefix, async (store) => {
    const keys = [];
    for await (const o of store.client.list(`${prefix}chunks/`)) keys.push(o.key.slice(o.key.lastIndexOf('/') + 1));
    return keys.sort();
  });
}

beforeAll(async () => {
  rgw = await startRadosgw();
  root = mkdtempSync(join(tmpdir(), 'cv-s3-gc-'));
  mkdirSync(guestsDir(), { recursive: true });
  pool = new WorkerPool(2);
  const bucket = freshBucket('gc');
  settings = {
    endpoint: rgw.endpoint,
    region: rgw.region,
    bucket,
    prefix: '',
    pathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
  };
  for (const prefix of ['a/', 'b/', 'c/']) (await S3Datastore.init({ ...settings, prefix })).close();
}, 600_000);

afterAll(async () => {
  await pool?.close();
  rgw?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('gc on an S3 datastore', () => {
  it('after prune, removes exactly the chunks no remaining version names; the rest restores byte for byte', async () => {
    writeGuest('101', [1, 2, 3, 0]);
    await backup('a/', '101');
    const sha2 = writeGuest('101', [1, 4, 5, 0]);
    await backup('a/', '101');
    writeGuest('102', [2, 6]);
    await backup('a/', '102');
    const hex = (n: number) => createHash('sha256').update(block(n)).digest('hex');
    expect(await chunkKeys('a/')).toEqual([1, 2, 3, 4, 5, 6].map(hex).sort());
    await withStore('a/', (store, catalog) => pruneS3Guest({ store, catalog, guestId: '101', options: { keepLast: 1 }, log }));
    const r = await withStore('a/', (store) => collectS3Garbage(store, log));
    expect(r.removedChunks).toBe(1); // block 3: only version 1 of 101 had it; block 2 is 102's too
    expect(await chunkKeys('a/')).toEqual([1, 2, 4, 5, 6].map(hex).sort());
    expect(await restoreSha('a/', '101', 2, '901')).toBe(sha2);
    const again = await withStore('a/', (store) => collectS3Garbage(store, log));
    expect(again.removedChunks).toBe(0);
  });

  it('does not run while a backup is registered as a writer (LOCKED), and that backup publishes', async () => {
    writeGuest('201', [7, 8]);
    let refused: unknown;
    const version = await backup('b/', '201', async (store) => {
      refused = await collectS3Garbage(store, log).catch((e: unknown) => e);
    });
    expect(version).toBe(1);
    expect((refused as { code?: string }).code).toBe('LOCKED');
    expect(String(refused)).toMatch(/garbage collection: held by backup of guest 201/);
  });

  it("a backup held up past its lock's life while a prune and a gc ran does not publish a version missing its reused chunks", async () => {
    const sha = writeGuest('301', [9, 10, 11]);
    await backup('c/', '301');
    let gcRemoved = 0;
    const held = backup('c/', '301', async (store) => {
      // as if this process had been stopped for more than an hour: its lock objects are stale and cleared,
      // another node prunes version 1 (whose chunks this run reuses) and collects the garbage
      for await (const o of store.client.list('c/locks/')) await store.client.delete(o.key);
      await store.removeVersion('301', 1);
      gcRemoved = (await collectS3Garbage(store, log)).removedChunks;
    });
    await expect(held).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringMatching(/a garbage collection ran .* run the backup again/) });
    expect(gcRemoved).toBe(3);
    const versions = await withStore('c/', (store) => store.listVersionNumbers('301'));
    expect(versions).toEqual([]);
    // the next backup stores the chunks afresh and restores
    const next = await backup('c/', '301');
    expect(await restoreSha('c/', '301', next, '902')).toBe(sha);
  });
});

describe('one process, several guests (as a job backs up its guests one after another)', () => {
  it("what one guest's backup knew to be stored is not trusted by the next guest's, after a prune and gc in between", async () => {
    (await S3Datastore.init({ ...settings, prefix: 'd/' })).close();
    const store = await S3Datastore.open({ ...settings, prefix: 'd/' });
    const catalog = await Catalog.open(store, { file: join(root, 'catalog-shared.sqlite') });
    try {
      writeGuest('501', [20, 21]);
      await backupInto(store, catalog, '501');
      writeGuest('501', [20, 22]);
      await backupInto(store, catalog, '501'); // primed with version 1's chunks: 20 and 21
      await pruneS3Guest({ store, catalog, guestId: '501', options: { keepLast: 1 }, log });
      expect((await collectS3Garbage(store, log)).removedChunks).toBe(1); // 21: only version 1 had it
      const sha = writeGuest('502', [21, 23]);
      const version = await backupInto(store, catalog, '502'); // must store 21 again
      expect(await restoreSha('d/', '502', version, '903')).toBe(sha);
    } finally {
      catalog.close();
      store.close();
    }
  });
});

describe('Object Lock on an S3 datastore (a "day" of 3 s: versions kept 3 s, chunks 3 + 7 x 3 = 24 s)', () => {
  const DAY = 3000;
  let locked: S3StoreSettings;
  const hex = (n: number) => createHash('sha256').update(block(n)).digest('hex');
  const openLocked = () => S3Datastore.open(locked, { dayMs: DAY });
  const withLocked = <T>(f: (store: S3Datastore, catalog: Catalog) => Promise<T>): Promise<T> => withOpened(openLocked, 'locked', f);
  const lockedBackup = (id: string) => withLocked((store, catalog) => backupInto(store, catalog, id));
  const lines: string[] = [];
  const recording = createTaskLog((line: { message: string }) => lines.push(line.message));
  const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

  it('keeps every version and its chunks for their time: prune, gc and the S3 API cannot remove them early; after it they can', async () => {
    locked = { ...settings, bucket: freshBucket('locked'), prefix: 'l/' };
    (await S3Datastore.init(locked, { objectLockDays: 1 })).close();
    const t0 = Date.now();
    writeGuest('401', [12, 13, 14]);
    await lockedBackup('401');
    writeGuest('401', [12, 15, 14]);
    const v2 = await lockedBackup('401');
    await withLocked(async (store) => {
      const chunk = await store.client.head(store.keys.chunk(hex(12)));
      expect(chunk?.lockMode).toBe('COMPLIANCE');
      expect(Math.abs((chunk?.retainUntil?.getTime() ?? 0) - (t0 + 8 * DAY))).toBeLessThan(2500);
      const manifest = await store.client.head(store.keys.file('401', v2, 'manifest.json'));
      expect(manifest?.lockMode).toBe('COMPLIANCE');
      expect(manifest?.metadata['chunks-until']).toBeTruthy();
      // the service itself refuses to delete a retained version of an object
      await expect(store.client.delete(store.keys.file('401', v2, 'manifest.json'), manifest?.versionId)).rejects.toMatchObject({ code: 'S3_FORBIDDEN' });
    });
    expect(await withLocked((store, catalog) => pruneS3Guest({ store, catalog, guestId: '401', options: { keepLast: 1 }, log: recording }))).toEqual([]);
    expect(lines.join('\n')).toMatch(/kept version 1 of VM 401: it is under Object Lock until/);
    expect(await withLocked((store) => store.listVersionNumbers('401'))).toEqual([1, 2]);

    await sleepUntil(t0 + DAY + 1500); // version 1's files are free now, its chunks not
    expect(await withLocked((store, catalog) => pruneS3Guest({ store, catalog, guestId: '401', options: { keepLast: 1 }, log }))).toEqual([1]);
    const early = await withLocked((store) => collectS3Garbage(store, recording));
    expect(early).toMatchObject({ removedChunks: 0, keptLocked: 1 }); // block 13: only version 1 named it
    expect(lines.join('\n')).toMatch(/kept 1 still under Object Lock retention/);

    await sleepUntil(t0 + 7 * DAY + 500); // the chunks run out before a new version's 3 s would: the next run lengthens those it reuses
    writeGuest('401', [12, 15, 16]);
    const t3 = Date.now();
    await lockedBackup('401');
    await withLocked(async (store) => {
      const reused = await store.client.head(store.keys.chunk(hex(12)));
      expect(Math.abs((reused?.retainUntil?.getTime() ?? 0) - (t3 + 8 * DAY))).toBeLessThan(2500);
    });

    await sleepUntil(t0 + 8 * DAY + 1500); // block 13's retention is over
    const late = await withLocked((store) => collectS3Garbage(store, log));
    expect(late.removedChunks).toBe(1);
    expect(late.keptLocked).toBe(0);
    const keys = await withLocked(async (store) => {
      const found: string[] = [];
      for await (const v of store.client.listVersions('l/chunks/')) found.push(v.key.slice(v.key.lastIndexOf('/') + 1));
      return found;
    });
    expect(keys).not.toContain(hex(13)); // every version of it gone, not hidden behind a delete marker
  }, 120_000);

  it("a job's own Object Lock days keep its versions longer than the datastore's; fewer days, or a datastore without Object Lock, are refused", async () => {
    const jobLocked = { ...settings, bucket: freshBucket('joblock'), prefix: 'j/' };
    (await S3Datastore.init(jobLocked, { objectLockDays: 1 })).close();
    const withJobLocked = <T>(f: (store: S3Datastore, catalog: Catalog) => Promise<T>): Promise<T> =>
      withOpened(() => S3Datastore.open(jobLocked, { dayMs: DAY }), 'joblock', f);
    writeGuest('402', [21, 22]);
    const t0 = Date.now();
    await withJobLocked((store, catalog) => backupInto(store, catalog, '402', undefined, 4));
    writeGuest('402', [21, 23]);
    const v2 = await withJobLocked((store, catalog) => backupInto(store, catalog, '402', undefined, 4));
    await withJobLocked(async (store, catalog) => {
      const manifest = await store.client.head(store.keys.file('402', v2, 'manifest.json'));
      expect(Math.abs((manifest?.retainUntil?.getTime() ?? 0) - (t0 + 4 * DAY))).toBeLessThan(2500);
      const chunk = await store.client.head(store.keys.chunk(hex(21)));
      expect(Math.abs((chunk?.retainUntil?.getTime() ?? 0) - (t0 + 11 * DAY))).toBeLessThan(2500);
      expect(() => new S3Target(store, catalog, { lockDays: 0 })).toThrow(/shorter than the 1 day\(s\).*never shorten it/);
    });
    await withStore('a/', async (store, catalog) => {
      expect(() => new S3Target(store, catalog, { lockDays: 2 })).toThrow(/was made without Object Lock/);
    });
    await sleepUntil(t0 + DAY + 1500); // past the datastore's day, within the job's four
    lines.length = 0;
    expect(await withJobLocked((store, catalog) => pruneS3Guest({ store, catalog, guestId: '402', options: { keepLast: 1 }, log: recording }))).toEqual([]);
    expect(lines.join('\n')).toMatch(/kept version 1 of VM 402: it is under Object Lock until/);
  }, 60_000);
});
