/**
 * Raw chunks checked where they land (chunk-reader.ts): a source whose reads may land anywhere (a
 * remote node, S3: `readsAnywhere`) gets each blob put so that a raw blob's payload is the plain chunk,
 * and the worker checks it there (CRC, length, SHA-256) instead of copying it into a plain buffer. That
 * must check exactly as much as the decode it replaces. The source here is a real datastore made by the
 * built CLI, read through a ChunkSource that says `readsAnywhere` (as the remote and S3 sources do; both
 * are also restored from in test/cli/remote-read.test.ts and the S3 tests), with a real worker pool:
 * - a version of random (raw blobs), text (zstd blobs) and zero regions and a short raw last chunk
 *   restores byte-identical and verifies;
 * - every single-byte change of a raw chunk's file is found by restore and verify;
 * - a forged raw chunk (other content, CRC made to match) fails on its SHA-256; one a byte short (CRC
 *   made to match) fails on its length; one whose magic says zstd (CRC made to match) fails to decode.
 */
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTaskLog } from '../../dist/core/log.js';
import { Datastore } from '../../dist/datastore/index.js';
import { encodeBlob } from '../../dist/format/index.js';
import { localSource, restoreGuest, verifyStore, WorkerPool, type VersionSource } from '../../dist/pipeline/index.js';
import { cli, imagePath, makeLab, regionBytes, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';
import { indexDigests, initStore, sha256, volumePath } from '../cli/cli-lab.js';

/** the short random tail after the 4 MiB regions: a raw last chunk whose length is no multiple of a block */
const TAIL = 100_003;

let lab: Lab;
let pool: InstanceType<typeof WorkerPool>;
const versionDir = join('guests', '101', '1');
const chunkPath = (hex: string): string => join(lab.storeDir, 'chunks', hex.slice(0, 4), hex);
const image = (): string => imagePath(lab, '101', 'vm-101-disk-0.raw');

beforeAll(async () => {
  lab = makeLab('cv-raw-in-place-');
  writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
  writeImage(image(), ['random', 'text', 'zero', 'random'], 1411);
  const fd = openSync(image(), 'a');
  writeSync(fd, regionBytes('random', 1411_999, TAIL));
  closeSync(fd);
  await initStore(lab);
  const r = await cli(['backup', '101', ...lab.flags, '--snapshot', 'off']);
  expect(r.code, r.stderr).toBe(0);
  pool = new WorkerPool(2);
});

afterAll(async () => {
  await pool?.close();
  lab?.cleanup();
});

/** The store read as a remote or S3 source reads: blobs may land anywhere in the reader's buffers. */
function landingSource(store: Datastore): VersionSource {
  return { ...localSource(store), chunks: { readInto: (hex, buf, offset) => store.chunks.readInto(hex, buf, offset), readsInFlight: 8, readsAnywhere: true } };
}

/** The version's chunks whose blobs are raw (magic CVBLOB\0R), in disk order. */
function rawChunks(): string[] {
  const digests = indexDigests(join(lab.storeDir, versionDir, 'scsi0.fidx')).filter((d): d is string => d !== null);
  return digests.filter((hex) => readFileSync(chunkPath(hex)).subarray(0, 8).toString('latin1') === 'CVBLOB\0R');
}

/** A restore of 101/1 through the landing source, and verify: what each says. A failed restore must leave nothing. */
async function check(newId = '301'): Promise<{ verifyOk: boolean; restoreError: string | undefined; badChunks: string[] }> {
  const store = await Datastore.open(lab.storeDir);
  const source = landingSource(store);
  let restoreError: string | undefined;
  try {
    await restoreGuest({
      source,
      pool,
      guestId: '101',
      version: 1,
      newId,
      guestsDir: lab.guestsDir,
      storages: { local: lab.storageDir },
      log: createTaskLog(),
    });
  } catch (err) {
    restoreError = String(err);
  }
  if (restoreError === undefined && newId === '301') {
    rmSync(join(lab.guestsDir, '301.conf'), { force: true });
    rmSync(join(lab.storageDir, 'images', '301'), { recursive: true, force: true });
  } else if (restoreError !== undefined) {
    expect(existsSync(join(lab.guestsDir, `${newId}.conf`))).toBe(false);
    expect(existsSync(join(lab.storageDir, 'images', newId)) ? readdirSync(join(lab.storageDir, 'images', newId)) : []).toEqual([]);
  }
  const verified = await verifyStore({ source, pool, guestId: '101', version: 1, log: createTaskLog() });
  rmSync(join(lab.storeDir, 'quarantine'), { recursive: true, force: true });
  return { verifyOk: verified.ok, restoreError, badChunks: verified.badChunks.map((b) => b.digest) };
}

/** Runs `check` with chunk `hex`'s file changed by `change`, then puts it back. */
async function withChanged(hex: string, change: (blob: Buffer) => Buffer): Promise<Awaited<ReturnType<typeof check>>> {
  const original = readFileSync(chunkPath(hex));
  writeFileSync(chunkPath(hex), change(Buffer.from(original)));
  try {
    return await check();
  } finally {
    writeFileSync(chunkPath(hex), original);
  }
}

/** `blob` with its CRC made to match its (changed) magic and payload: only the SHA-256 or the length can tell. */
function withMatchingCrc(blob: Buffer): Buffer {
  blob.writeUInt32LE(crc32(blob.subarray(12), crc32(blob.subarray(0, 8))), 8);
  return blob;
}

describe('raw chunks checked where they land (a source that reads anywhere: remote, S3)', () => {
  it('restores byte-identical and verifies: raw, zstd and zero chunks and a short raw last chunk', async () => {
    const raws = rawChunks();
    expect(raws.length).toBe(3); // two random regions and the random tail
    expect(readFileSync(chunkPath(raws[2] as string)).length).toBe(12 + TAIL);
    const r = await check('302');
    expect(r).toEqual({ verifyOk: true, restoreError: undefined, badChunks: [] });
    expect(sha256(volumePath(lab, 'local:302/vm-302-disk-0.raw'))).toBe(sha256(image()));
  });

  it('every single-byte change of a raw chunk is found by restore and verify', async () => {
    const [hex] = rawChunks() as [string];
    const size = readFileSync(chunkPath(hex)).length;
    await fc.assert(
      fc.asyncProperty(fc.record({ at: fc.nat({ max: size - 1 }), xor: fc.integer({ min: 1, max: 255 }) }), async ({ at, xor }) => {
        const r = await withChanged(hex, (b) => {
          b[at] = (b[at] as number) ^ xor;
          return b;
        });
        expect(r.restoreError).toContain(hex);
        expect(r.verifyOk).toBe(false);
        expect(r.badChunks).toEqual([hex]);
      }),
      { numRuns: 15 },
    );
  });

  it('a forged raw chunk (other content, CRC made to match) fails on its SHA-256', async () => {
    const [hex] = rawChunks() as [string];
    const r = await withChanged(hex, (b) => {
      b[4096] = (b[4096] as number) ^ 1;
      return withMatchingCrc(b);
    });
    expect(r.restoreError).toMatch(new RegExp(`chunk ${hex} is corrupt: its SHA-256 does not match its name`));
    expect(r.badChunks).toEqual([hex]);
  });

  it('a raw chunk a byte short, or the short last one a byte long (CRC made to match), fails on its length', async () => {
    const [first, , tail] = rawChunks() as [string, string, string];
    const short = await withChanged(first, (b) => withMatchingCrc(b.subarray(0, b.length - 1)));
    expect(short.restoreError).toMatch(new RegExp(`chunk ${first} is corrupt: length ${4 * 2 ** 20 - 1}, expected ${4 * 2 ** 20}`));
    expect(short.badChunks).toEqual([first]);
    const long = await withChanged(tail, (b) => withMatchingCrc(Buffer.concat([b, Buffer.from([0])])));
    expect(long.restoreError).toMatch(new RegExp(`chunk ${tail} is corrupt: length ${TAIL + 1}, expected ${TAIL}`));
    expect(long.badChunks).toEqual([tail]);
  });

  it('a raw chunk whose magic says zstd (CRC made to match) is decoded, fails, and is reported damaged', async () => {
    const [hex] = rawChunks() as [string];
    const r = await withChanged(hex, (b) => {
      b[7] = 'Z'.charCodeAt(0);
      return withMatchingCrc(b);
    });
    expect(r.restoreError).toContain(`chunk ${hex} is corrupt`);
    expect(r.badChunks).toEqual([hex]);
  });
});

describe('WorkerPool.checkRawInPlace', () => {
  it('gives the buffer back when the raw blob holds its chunk; refuses a zstd blob and a wrong name', async () => {
    const plain = regionBytes('random', 7, 70_000);
    const hex = (await pool.digest(new Uint8Array(plain).buffer, plain.length)).hex;
    const place = (blob: Buffer): { blob: ArrayBuffer; blobOffset: number; blobLength: number } => {
      const buf = new ArrayBuffer(blob.length + 100);
      new Uint8Array(buf, 100 - 12).set(blob);
      return { blob: buf, blobOffset: 100 - 12, blobLength: blob.length };
    };
    const back = await pool.checkRawInPlace(place(encodeBlob(plain, 0)), hex, plain.length);
    expect(Buffer.from(back, 100, plain.length).equals(plain)).toBe(true);
    const text = Buffer.from('coldvault '.repeat(7000));
    const textHex = (await pool.digest(new Uint8Array(text).buffer, text.length)).hex;
    await expect(pool.checkRawInPlace(place(encodeBlob(text, 3)), textHex, text.length)).rejects.toMatchObject({
      code: 'CHUNK_CORRUPT',
      message: expect.stringContaining('it is not a raw blob'),
    });
    await expect(pool.checkRawInPlace(place(encodeBlob(plain, 0)), textHex, plain.length)).rejects.toMatchObject({
      code: 'CHUNK_CORRUPT',
      message: expect.stringContaining('SHA-256 does not match its name'),
    });
  });
});
