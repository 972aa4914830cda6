/**
 * Tampering with an encrypted version (issue 13): a store someone can write to must not be able to
 * change what a restore gives back. fast-check picks positions (and the value xor-ed in) in one of
 * the version's chunk files, its index and its manifest; every single-byte change is found by verify
 * with the key (the version fails) and by restore (it fails and leaves nothing). Also: a chunk of the
 * same key stored under another chunk's name, and a manifest of another version or another guest
 * put in a version's folder. Real store made by the built CLI, real worker pool, in-process flows.
 */
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTaskLog } from '../../dist/core/log.js';
import { Datastore } from '../../dist/datastore/index.js';
import { loadVersionKey, restoreGuest, verifyStore, WorkerPool } from '../../dist/pipeline/index.js';
import { cli, imagePath, makeLab, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';
import { indexDigests, initStore, ok, sha256, volumePath } from '../cli/cli-lab.js';

let lab: Lab;
let pool: InstanceType<typeof WorkerPool>;
let key: Awaited<ReturnType<typeof loadVersionKey>>;
const versionDir = (guest: string, v: number): string => join(lab.storeDir, 'guests', guest, String(v));
const chunkPath = (hex: string): string => join(lab.storeDir, 'chunks', hex.slice(0, 4), hex);

beforeAll(async () => {
  lab = makeLab('cv-enc-tamper-');
  writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
  writeGuest(lab, '102', [{ key: 'scsi0', file: 'vm-102-disk-0.raw' }]);
  writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), ['text', 'random'], 1311, 777);
  writeImage(imagePath(lab, '102', 'vm-102-disk-0.raw'), ['random'], 1312);
  await initStore(lab);
  await ok(['key', 'create', join(lab.root, 'a.key'), '--kdf', 'none']);
  for (const id of ['101', '101', '102']) {
    const r = await cli(['backup', id, ...lab.flags, '--snapshot', 'off', '--encrypt', join(lab.root, 'a.key')]);
    expect(r.code, r.stderr).toBe(0);
  }
  pool = new WorkerPool(2);
  key = await loadVersionKey(join(lab.root, 'a.key'), () => Promise.reject(new Error('no passphrase expected')));
});

afterAll(async () => {
  await pool?.close();
  lab?.cleanup();
});

/** Restores version 1 of guest 101 with the key as guest `newId`. */
const restoreAs = (store: Datastore, newId: string) =>
  restoreGuest({ store, pool, key, guestId: '101', version: 1, newId, guestsDir: lab.guestsDir, storages: { local: lab.storageDir }, log: createTaskLog() });

/** A restore of 101/1 and verify with the key: what each says. The restore must leave nothing behind. */
async function check(): Promise<{ verifyOk: boolean; restoreError: string | undefined }> {
  const store = await Datastore.open(lab.storeDir);
  let restoreError: string | undefined;
  try {
    await restoreAs(store, '301');
  } catch (err) {
    restoreError = String(err);
  }
  if (restoreError === undefined) {
    rmSync(join(lab.guestsDir, '301.conf'), { force: true });
    rmSync(join(lab.storageDir, 'images', '301'), { recursive: true, force: true });
  } else {
    expect(existsSync(join(lab.guestsDir, '301.conf'))).toBe(false);
    expect(existsSync(join(lab.storageDir, 'images', '301')) ? readdirSync(join(lab.storageDir, 'images', '301')) : []).toEqual([]);
  }
  // after the restore: verify quarantines a damaged chunk (the test puts it back)
  const verified = await verifyStore({ store, pool, key, guestId: '101', version: 1, log: createTaskLog() }).catch(() => ({ ok: false }));
  rmSync(join(lab.storeDir, 'quarantine'), { recursive: true, force: true });
  return { verifyOk: verified.ok, restoreError };
}

/** Runs `check` with `file` changed by `change`, then puts the file back as it was. */
async function withChanged(file: string, change: (bytes: Buffer) => void): Promise<Awaited<ReturnType<typeof check>>> {
  const original = readFileSync(file);
  const changed = Buffer.from(original);
  change(changed);
  writeFileSync(file, changed);
  try {
    return await check();
  } finally {
    writeFileSync(file, original);
  }
}

const flipAt = (file: string) => fc.record({ at: fc.nat({ max: readFileSync(file).length - 1 }), xor: fc.integer({ min: 1, max: 255 }) });

describe('tampering with an encrypted version', () => {
  it('the untouched version verifies and restores byte-identical (the baseline the others differ from)', async () => {
    const r = await check();
    expect(r).toEqual({ verifyOk: true, restoreError: undefined });
    await restoreAs(await Datastore.open(lab.storeDir), '302');
    expect(sha256(volumePath(lab, 'local:302/vm-302-disk-0.raw'))).toBe(sha256(imagePath(lab, '101', 'vm-101-disk-0.raw')));
  });

  const files = (): Record<string, string> => {
    const first = indexDigests(join(versionDir('101', 1), 'scsi0.fidx')).find((d): d is string => d !== null) as string;
    return { chunk: chunkPath(first), index: join(versionDir('101', 1), 'scsi0.fidx'), manifest: join(versionDir('101', 1), 'manifest.json') };
  };

  for (const what of ['chunk', 'index', 'manifest'] as const) {
    it(`every single-byte change of its ${what} is found by verify with the key and by restore`, async () => {
      const file = files()[what] as string;
      await fc.assert(
        fc.asyncProperty(flipAt(file), async ({ at, xor }) => {
          const r = await withChanged(file, (b) => {
            b[at] = (b[at] as number) ^ xor;
          });
          expect(r.verifyOk).toBe(false);
          expect(r.restoreError).toBeDefined();
        }),
        { numRuns: what === 'chunk' ? 25 : 40 },
      );
    });
  }

  it('a chunk of the same key stored under another chunk name is found (the name is authenticated)', async () => {
    const [a, b] = indexDigests(join(versionDir('101', 1), 'scsi0.fidx')).filter((d): d is string => d !== null);
    const original = readFileSync(chunkPath(a as string));
    copyFileSync(chunkPath(b as string), chunkPath(a as string));
    try {
      const r = await check();
      expect(r.verifyOk).toBe(false);
      expect(r.restoreError).toContain('does not authenticate under key');
    } finally {
      writeFileSync(chunkPath(a as string), original);
    }
  });

  it('a manifest of another version or another guest put in the folder of version 1 is found', async () => {
    const target = join(versionDir('101', 1), 'manifest.json');
    const original = readFileSync(target);
    try {
      for (const from of [versionDir('101', 2), versionDir('102', 1)]) {
        copyFileSync(join(from, 'manifest.json'), target);
        const r = await check();
        expect(r.verifyOk).toBe(false);
        expect(r.restoreError).toMatch(/it was moved or swapped/);
      }
    } finally {
      writeFileSync(target, original);
    }
    expect(await check()).toEqual({ verifyOk: true, restoreError: undefined });
  });
});
