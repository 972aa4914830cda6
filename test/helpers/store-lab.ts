/**
 * A real datastore and real guests for in-process tests of concurrent operations: the engine's own
 * backup, prune, protect, gc, verify and restore functions (the built code in dist/, whose chunk
 * workers are .js files) on real files. Disks are made of 4 MiB blocks from a small numbered pool
 * (0 = all zero), so versions and guests share chunks the way real nightly backups do.
 * Each operation opens its own Datastore object with the seams it is given, as a process would.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { Datastore, collectGarbage } from '../../dist/datastore/index.js';
import { Catalog } from '../../dist/catalog/index.js';
import { backupGuest, protectVersion, pruneGuest, restoreGuest, verifyStore, WorkerPool } from '../../dist/pipeline/index.js';
import { createTaskLog } from '../../dist/core/index.js';
import type { Seams } from '../../src/core/seams.js';
import { regionBytes, REGION } from './fixtures.js';

const blockCache = new Map<number, Buffer>();

/** Block `n` of the pool: 0 is all zero, others are distinct random 4 MiB blocks. */
export function block(n: number): Buffer {
  let b = blockCache.get(n);
  if (!b) {
    b = n === 0 ? Buffer.alloc(REGION) : regionBytes('random', 7000 + n);
    blockCache.set(n, b);
  }
  return b;
}

export function sha256Of(blocks: number[]): string {
  const h = createHash('sha256');
  for (const n of blocks) h.update(block(n));
  return h.digest('hex');
}

export interface StoreLab {
  root: string;
  storeDir: string;
  guestsDir: string;
  storages: Record<string, string>;
  pool: WorkerPool;
  open(seams?: Seams): Promise<Datastore>;
  /** Writes guest `id`'s config and its one disk; returns the disk's SHA-256. */
  writeGuest(id: string, blocks: number[]): string;
  backup(id: string, seams?: Seams): Promise<{ version: number }>;
  prune(id: string, keepLast: number, seams?: Seams): Promise<number[]>;
  protect(id: string, version: number, seams?: Seams): Promise<void>;
  gc(seams?: Seams): Promise<{ removedChunks: number }>;
  verify(seams?: Seams): Promise<{ ok: boolean; errors: string[] }>;
  /** Restores a version under a fresh id and returns the restored disk's SHA-256. */
  restoreSha(id: string, version: number, seams?: Seams): Promise<string>;
  versions(): Promise<Array<{ id: string; version: number }>>;
  close(): Promise<void>;
}

export async function makeStoreLab(base = '/dev/shm'): Promise<StoreLab> {
  const root = mkdtempSync(join(base, 'cv-interleave-'));
  const storeDir = join(root, 'store');
  const guestsDir = join(root, 'guests');
  const storages = { local: join(root, 'vz') };
  mkdirSync(guestsDir, { recursive: true });
  mkdirSync(join(storages.local, 'images'), { recursive: true });
  await Datastore.init(storeDir);
  const pool = new WorkerPool(2);
  let nextRestoreId = 9000;
  const log = createTaskLog();
  const open = (seams?: Seams): Promise<Datastore> => Datastore.open(storeDir, seams);
  const withCatalog = async <T>(seams: Seams | undefined, f: (store: Datastore, catalog: Catalog) => Promise<T>): Promise<T> => {
    const store = await open(seams);
    const catalog = await Catalog.open(store);
    try {
      return await f(store, catalog);
    } finally {
      catalog.close();
    }
  };
  const lab: StoreLab = {
    root,
    storeDir,
    guestsDir,
    storages,
    pool,
    open,
    writeGuest(id, blocks) {
      const dir = join(storages.local, 'images', id);
      mkdirSync(dir, { recursive: true });
      const path = join(dir, `vm-${id}-disk-0.raw`);
      const fd = openSync(path, 'w');
      try {
        blocks.forEach((n, i) => {
          if (n !== 0) writeSync(fd, block(n), 0, REGION, i * REGION);
        });
        ftruncateSync(fd, blocks.length * REGION);
      } finally {
        closeSync(fd);
      }
      writeFileSync(join(guestsDir, `${id}.conf`), `name: g${id}\nmemory: 128\nscsi0: local:${id}/vm-${id}-disk-0.raw,size=${blocks.length * 4}M\n`);
      return sha256Of(blocks);
    },
    backup: (id, seams) =>
      withCatalog(seams, async (store, catalog) => {
        const r = await backupGuest({ store, catalog, pool, guestsDir, storages, guestId: id, node: 'test', zstdLevel: 1, log });
        return { version: r.manifest.version };
      }),
    prune: (id, keepLast, seams) => withCatalog(seams, (store, catalog) => pruneGuest({ store, catalog, guestId: id, options: { keepLast }, log })),
    protect: (id, version, seams) => withCatalog(seams, (store, catalog) => protectVersion({ store, catalog, guestId: id, version, value: true })),
    gc: async (seams) => collectGarbage(await open(seams), log),
    verify: (seams) =>
      withCatalog(seams, async (store, catalog) => {
        const r = await verifyStore({ store, catalog, pool, log });
        return { ok: r.ok, errors: r.versions.flatMap((v: { errors: string[] }) => v.errors) };
      }),
    async restoreSha(id, version, seams) {
      const newId = String(nextRestoreId++);
      const store = await open(seams);
      const { volumes } = await restoreGuest({ store, pool, guestId: id, version, newId, guestsDir, storages, log });
      const volume = [...volumes.values()][0] ?? '';
      const path = join(storages.local, 'images', newId, volume.split('/').pop() ?? '');
      const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
      rmSync(join(storages.local, 'images', newId), { recursive: true, force: true });
      rmSync(join(guestsDir, `${newId}.conf`), { force: true });
      return sha;
    },
    async versions() {
      const store = await open();
      const out: Array<{ id: string; version: number }> = [];
      for (const id of await store.listGuestIds()) for (const version of await store.listVersionNumbers(id)) out.push({ id, version });
      return out;
    },
    async close() {
      await pool.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return lab;
}
