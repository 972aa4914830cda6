/**
 * Chunks received from another node (ChunkStore.insertReceived, touchOrMissing, readBlob) on a real
 * store: a blob is stored only when it decodes to bytes that hash to its name, and a refused one
 * leaves no file behind; the dedup question touches what is there (so gc keeps it) and answers the
 * rest missing; a stored blob reads back byte for byte. The check runs on the calling thread (sync)
 * or in worker threads (a server's uploads: WorkerPool.checkReceived): both refuse the same blobs.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Datastore, type ReceivedCheck } from '../../dist/datastore/index.js';
import { CHUNK_SIZE, chunkKeys, encodeBlob, encodeEncryptedBlobInto, encryptedChunkId, maxBlobSize, newMasterKey } from '../../dist/format/index.js';
import { WorkerPool } from '../../dist/pipeline/index.js';
import { ManualClock } from '../helpers/interleaving.js';
import { regionBytes } from '../helpers/fixtures.js';

let root: string;
let store: Datastore;
let clock: ManualClock;
beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'cv-received-'));
  clock = new ManualClock();
  store = await Datastore.init(join(root, 'store'), { clock });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const hexOf = (plain: Buffer): string => createHash('sha256').update(plain).digest('hex');
const chunkFiles = (): string[] =>
  readdirSync(store.chunks.dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name);

const pool = new WorkerPool(2);
afterAll(() => pool.close());
const checks: Array<[string, ReceivedCheck | undefined]> = [
  ['on the calling thread', undefined],
  ['in worker threads', (hex, blob) => pool.checkReceived(blob, hex)],
  ['in worker threads, read in place from a SharedArrayBuffer (a server body)', (hex, blob) => pool.checkReceived(Buffer.from(shared(blob)), hex)],
];

function shared(blob: Uint8Array): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(blob.length);
  new Uint8Array(sab).set(blob);
  return sab;
}

describe.each(checks)('insertReceived, checked %s', (_where, check) => {
  it('stores a raw or zstd blob whose content hashes to its name, and it reads back as sent', async () => {
    for (const [plain, level] of [
      [regionBytes('random', 1, 100_000), 0],
      [regionBytes('text', 2, 300_000), 3],
      [regionBytes('text', 5, CHUNK_SIZE), 3],
    ] as const) {
      const blob = encodeBlob(plain, level);
      await store.chunks.insertReceived(hexOf(plain), Buffer.from(blob), check);
      expect((await store.chunks.readBlob(hexOf(plain))).equals(blob)).toBe(true);
    }
  });

  it('refuses with CHUNK_FORGED, storing nothing: another chunk under this name, a flipped byte, bad magic, a truncated blob, an empty chunk, more than a chunk', async () => {
    const plain = regionBytes('text', 3, 200_000);
    const hex = hexOf(plain);
    const good = encodeBlob(plain, 3);
    const other = encodeBlob(regionBytes('text', 4, 200_000), 3);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 5]! ^= 1;
    const magic = Buffer.from(good);
    magic[0] = 0x58;
    const cases: Array<[string, Buffer, RegExp]> = [
      ['another chunk', other, /does not hash to its name/],
      ['flipped byte', flipped, /CRC mismatch/],
      ['bad magic', magic, /bad magic/],
      ['truncated', good.subarray(0, 8), /bad magic/],
      ['empty chunk', encodeBlob(Buffer.alloc(0), 0), /holds 0 bytes/],
      ['a zstd frame of more than a chunk', encodeBlob(Buffer.alloc(CHUNK_SIZE + 1, 0x61), 3), /more than 4194304/],
    ];
    for (const [what, blob, why] of cases) {
      const err = await store.chunks.insertReceived(hex, blob, check).then(
        () => undefined,
        (e: unknown) => e as { code: string; message: string },
      );
      expect(err?.code, what).toBe('CHUNK_FORGED');
      expect(err?.message, what).toMatch(why);
      expect(err?.message, what).toContain(hex);
    }
    expect(chunkFiles()).toEqual([]);
    expect(await store.chunks.exists(hex)).toBe(false);
  });

  it('an encrypted blob (issue 13): stored when its CRC and size hold (its content needs the key); a flipped byte or an oversize one is refused', async () => {
    const keys = chunkKeys(newMasterKey());
    const plain = regionBytes('text', 6, CHUNK_SIZE);
    const id = encryptedChunkId(plain, keys);
    const out = Buffer.alloc(maxBlobSize(CHUNK_SIZE));
    const sealed = Buffer.from(out.subarray(0, encodeEncryptedBlobInto(plain, id, keys, 3, out)));
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 100]! ^= 0x10;
    const oversize = Buffer.concat([sealed.subarray(0, 8), Buffer.alloc(maxBlobSize(CHUNK_SIZE))]);
    for (const [what, blob, why] of [
      ['flipped byte', flipped, /CRC mismatch/],
      ['oversize', oversize, /more than any chunk's/],
    ] as const) {
      const err = await store.chunks.insertReceived(id.toString('hex'), Buffer.from(blob), check).then(
        () => undefined,
        (e: unknown) => e as { code: string; message: string },
      );
      expect(err?.code, what).toBe('CHUNK_FORGED');
      expect(err?.message, what).toMatch(why);
    }
    expect(chunkFiles()).toEqual([]);
    await store.chunks.insertReceived(id.toString('hex'), Buffer.from(sealed), check);
    expect((await store.chunks.readBlob(id.toString('hex'))).equals(sealed)).toBe(true);
  });
});

describe('touchOrMissing', () => {
  it('touches the chunks that are there with the store clock and answers the others missing, in order', async () => {
    const plains = [1, 2, 3].map((s) => regionBytes('random', s, 4096));
    const [a, b, c] = plains.map(hexOf) as [string, string, string];
    await store.chunks.insert(a, encodeBlob(plains[0]!, 0));
    await store.chunks.insert(c, encodeBlob(plains[2]!, 0));
    const written = statSync(store.chunks.pathOf(a)).mtimeMs;
    clock.advance(3_600_000);
    const missingHex = 'f'.repeat(64);
    expect(await store.chunks.touchOrMissing([a, missingHex, b, c])).toEqual([missingHex, b]);
    expect(statSync(store.chunks.pathOf(a)).mtimeMs).toBeGreaterThanOrEqual(written + 3_600_000);
    expect(statSync(store.chunks.pathOf(c)).mtimeMs).toBeGreaterThanOrEqual(written + 3_600_000);
    expect(await store.chunks.exists(b)).toBe(false);
  });
});

describe('readBlob', () => {
  it('is CHUNK_MISSING for a chunk the store does not have', async () => {
    await expect(store.chunks.readBlob('a'.repeat(64))).rejects.toMatchObject({ code: 'CHUNK_MISSING' });
  });
});
