/**
 * A version pruned while verify runs is skipped, not failed (issue 10, item 7; seen once in 8
 * concurrent backup + prune + verify runs). The window is made to happen on purpose through the
 * datastore's checkpoints (src/core/seams.ts, 'verify:listed' and 'verify:collected'): the version is removed (as prune removes it: rename to trash, delete; and its
 * catalog row) right after verify listed it, or after verify read its index, when gc may also have
 * swept the chunks only it used. Real store (made by the built CLI), real worker pool, real files.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../dist/catalog/index.js';
import { createTaskLog } from '../../dist/core/log.js';
import { Datastore } from '../../dist/datastore/index.js';
import { verifyStore, WorkerPool } from '../../dist/pipeline/index.js';
import { imagePath, makeLab, rewriteRegion, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';
import { backup, indexDigests, initStore } from '../cli/cli-lab.js';

type CatalogT = Awaited<ReturnType<typeof Catalog.open>>;

describe('verify while a version is pruned', () => {
  let lab: Lab;
  let pool: InstanceType<typeof WorkerPool>;
  const catalogs: Array<CatalogT> = [];

  /** Opens the store; `at(step, store, catalog)` runs when verify reaches a checkpoint. */
  const open = async (at?: (step: string, store: Datastore, catalog: CatalogT) => Promise<void>): Promise<{ store: Datastore; catalog: CatalogT }> => {
    const opened: { current?: { store: Datastore; catalog: CatalogT } } = {};
    const store = await Datastore.open(lab.storeDir, {
      checkpoint: async (step) => {
        if (opened.current) await at?.(step, opened.current.store, opened.current.catalog);
      },
    });
    const catalog = await Catalog.open(store);
    opened.current = { store, catalog };
    catalogs.push(catalog);
    return opened.current;
  };

  /** The chunks version `v` of guest 101 uses and no other version of the store does. */
  const onlyIn = (v: number, others: number[]): string[] => {
    const digests = (n: number): Array<string | null> => indexDigests(join(lab.storeDir, 'guests', '101', String(n), 'scsi0.fidx'));
    const elsewhere = new Set([...others.flatMap(digests), ...indexDigests(join(lab.storeDir, 'guests', '102', '1', 'scsi0.fidx'))]);
    return digests(v).filter((d): d is string => d !== null && !elsewhere.has(d));
  };

  beforeAll(async () => {
    lab = makeLab('cv-verify-pruned-');
    writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
    writeGuest(lab, '102', [{ key: 'scsi0', file: 'vm-102-disk-0.raw' }]);
    writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), ['random', 'text', 'random'], 81);
    writeImage(imagePath(lab, '102', 'vm-102-disk-0.raw'), ['text', 'random'], 82);
    await initStore(lab);
    await backup(lab, '101');
    await backup(lab, '102');
    for (const seed of [8101, 8102]) {
      rewriteRegion(imagePath(lab, '101', 'vm-101-disk-0.raw'), 0, 'random', seed); // each next version has a chunk of its own
      await backup(lab, '101');
    }
    pool = new WorkerPool(2);
  });

  afterEach(() => {
    for (const c of catalogs.splice(0)) c.close();
  });

  afterAll(async () => {
    await pool?.close();
    lab?.cleanup();
  });

  it('a version removed between the listing and the reading of its manifest is skipped with an INFO line; verify is ok', async () => {
    const { store, catalog } = await open(async (step, s, c) => {
      if (step !== 'verify:listed') return;
      await s.removeVersion('101', 2);
      c.removeVersion('101', 2);
    });
    const log = createTaskLog();
    const result = await verifyStore({ store, catalog, pool, log });
    expect(log.lines.filter((l) => l.level !== 'INFO').map((l) => l.message)).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.skipped).toEqual([{ guestId: '101', version: 2 }]);
    expect(result.versions.map((v) => [`${v.guestId}/${v.version}`, v.state])).toEqual([
      ['101/1', 'ok'],
      ['101/3', 'ok'],
      ['102/1', 'ok'],
    ]);
    expect(log.lines.map((l) => l.message)).toContain('version 101/2 was removed while verify ran (pruned): skipped');
  });

  it('a version removed after its index was read, its own chunks swept by gc meanwhile, is skipped; verify is ok', async () => {
    const own = onlyIn(3, [1]);
    expect(own).toHaveLength(1);
    const { store, catalog } = await open(async (step, s, c) => {
      if (step !== 'verify:collected') return;
      await s.removeVersion('101', 3);
      c.removeVersion('101', 3);
      for (const hex of own) rmSync(s.chunks.pathOf(hex)); // as gc sweeps a chunk nothing uses any more
    });
    const log = createTaskLog();
    const result = await verifyStore({ store, catalog, pool, log });
    expect(log.lines.filter((l) => l.level !== 'INFO').map((l) => l.message)).toEqual([]);
    expect(result).toMatchObject({ ok: true, badChunks: [] });
    expect(result.skipped).toEqual([{ guestId: '101', version: 3 }]);
    expect(result.unreadableChunks).toEqual([]);
    expect(result.versions.map((v) => [`${v.guestId}/${v.version}`, v.state])).toEqual([
      ['101/1', 'ok'],
      ['102/1', 'ok'],
    ]);
    expect(log.lines.map((l) => l.message)).toContain('version 101/3 was removed while verify ran (pruned): skipped');
  });

  it('a chunk missing from a version that is still there is damage all the same: that version failed', async () => {
    const { store, catalog } = await open();
    const shared = indexDigests(join(lab.storeDir, 'guests', '101', '1', 'scsi0.fidx'))[1]!;
    rmSync(store.chunks.pathOf(shared));
    const result = await verifyStore({ store, catalog, pool, log: createTaskLog() });
    expect(result.ok).toBe(false);
    expect(catalog.getVersion('101', 1)?.verifyState).toBe('failed');
    expect(result.badChunks).toMatchObject([{ digest: shared, versions: ['101/1'] }]);
    expect(result.badChunks[0]?.trouble).toBe('missing');
    expect(result.skipped).toEqual([]);
  });
});
