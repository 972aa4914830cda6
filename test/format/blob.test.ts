/**
 * Chunk blob codec (format/blob.ts): what a user relies on is that a chunk read back is the chunk that
 * was written, that compression never makes a blob bigger than the raw form, and that damage to a blob
 * file is reported as CHUNK_CORRUPT instead of being handed back as data.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { isColdvaultError } from '../../src/core/errors.js';
import { BLOB_HEADER_SIZE, blobEncoding, decodeBlob, encodeBlob } from '../../src/format/index.js';
import { regionBytes } from '../helpers/fixtures.js';

const randomBytes = fc.uint8Array({ minLength: 0, maxLength: 64 * 1024 });
/** Compressible data: a short random pattern repeated, with a few random bytes sprinkled in. */
const compressibleBytes = fc
  .tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.integer({ min: 1, max: 64 * 1024 }), fc.array(fc.nat(), { maxLength: 8 }))
  .map(([pattern, length, noise]) => {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = pattern[i % pattern.length] as number;
    for (const n of noise) out[n % length] = (n >>> 8) & 0xff;
    return out;
  });
const anyBytes = fc.oneof(randomBytes, compressibleBytes);
/** A chunk as the engine makes them: never empty (a disk of size 0 has no chunks). */
const chunkBytes = anyBytes.filter((b) => b.length > 0);

/** Byte equality without a slow element-by-element deep compare. */
const same = (a: Uint8Array, b: Uint8Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const level = fc.integer({ min: 0, max: 5 });

function expectCorrupt(fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'decodeBlob accepted a damaged blob').toBeDefined();
  expect(isColdvaultError(thrown, 'CHUNK_CORRUPT'), `expected CHUNK_CORRUPT, got ${String(thrown)}`).toBe(true);
  expect((thrown as Error).message).toContain('chunk under test');
}

describe('chunk blob', () => {
  it('decodes to exactly the bytes encoded, for random and compressible data at zstd levels 0..5', () => {
    fc.assert(
      fc.property(anyBytes, level, (plain, zstdLevel) => {
        const blob = encodeBlob(plain, zstdLevel);
        expect(same(decodeBlob(blob, 'chunk under test'), plain)).toBe(true);
        expect(same(decodeBlob(blob, 'chunk under test', plain.length), plain)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('stores raw at level 0, and at other levels picks zstd exactly when zstd is smaller', () => {
    fc.assert(
      fc.property(anyBytes, level, (plain, zstdLevel) => {
        const blob = encodeBlob(plain, zstdLevel);
        expect(blob.length).toBeLessThanOrEqual(plain.length + BLOB_HEADER_SIZE);
        if (zstdLevel === 0) {
          expect(blobEncoding(blob)).toBe('raw');
          return;
        }
        const zstdSize = compress(plain, { compressionLevel: zstdLevel }).length;
        expect(blobEncoding(blob)).toBe(zstdSize < plain.length ? 'zstd' : 'raw');
        if (blobEncoding(blob) === 'zstd') expect(blob.length).toBe(zstdSize + BLOB_HEADER_SIZE);
      }),
      { numRuns: 300 },
    );
  });

  it('compresses compressible data and keeps random data raw (both encodings are exercised)', () => {
    const text = regionBytes('text', 5, 1024 * 1024);
    const random = regionBytes('random', 6, 1024 * 1024);
    for (const l of [1, 3, 5]) {
      expect(blobEncoding(encodeBlob(text, l))).toBe('zstd');
      expect(encodeBlob(text, l).length).toBeLessThan(text.length / 2);
      expect(same(decodeBlob(encodeBlob(text, l), 'x', text.length), text)).toBe(true);
      expect(blobEncoding(encodeBlob(random, l))).toBe('raw');
      expect(same(decodeBlob(encodeBlob(random, l), 'x', random.length), random)).toBe(true);
    }
  });

  it('reports any single changed byte as CHUNK_CORRUPT (decoded with the expected length, as the engine does)', () => {
    fc.assert(
      fc.property(chunkBytes, level, fc.nat(), fc.integer({ min: 1, max: 255 }), (plain, zstdLevel, at, xor) => {
        const blob = Buffer.from(encodeBlob(plain, zstdLevel));
        const pos = at % blob.length;
        blob[pos] = (blob[pos] as number) ^ xor;
        expectCorrupt(() => decodeBlob(blob, 'chunk under test', plain.length));
      }),
      { numRuns: 1000 },
    );
  });

  it('reports a changed byte in the CRC or the payload as CHUNK_CORRUPT even without an expected length', () => {
    fc.assert(
      fc.property(anyBytes, level, fc.nat(), fc.integer({ min: 1, max: 255 }), (plain, zstdLevel, at, xor) => {
        const blob = Buffer.from(encodeBlob(plain, zstdLevel));
        const pos = 8 + (at % (blob.length - 8));
        blob[pos] = (blob[pos] as number) ^ xor;
        expectCorrupt(() => decodeBlob(blob, 'chunk under test'));
      }),
      { numRuns: 500 },
    );
  });

  it('refuses truncated blobs: 0, 1 and 3 bytes, the header only, and a blob cut short', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 8192 }), level, fc.nat(), (plain, zstdLevel, cutAt) => {
        const blob = encodeBlob(plain, zstdLevel);
        for (const length of [0, 1, 3, BLOB_HEADER_SIZE - 1, BLOB_HEADER_SIZE]) {
          expectCorrupt(() => decodeBlob(blob.subarray(0, length), 'chunk under test', plain.length));
        }
        expectCorrupt(() => decodeBlob(blob.subarray(0, BLOB_HEADER_SIZE + (cutAt % (blob.length - BLOB_HEADER_SIZE))), 'chunk under test', plain.length));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses blobs shorter than a header without an expected length, and garbage with a wrong magic', () => {
    for (const bytes of [Buffer.alloc(0), Buffer.from([0x43]), Buffer.from('CVB'), Buffer.from('CVBLOB\0R')]) {
      expectCorrupt(() => decodeBlob(bytes, 'chunk under test'));
    }
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 256 }), (bytes) => {
        fc.pre(!Buffer.from(bytes.subarray(0, 6)).equals(Buffer.from('CVBLOB')));
        expectCorrupt(() => decodeBlob(bytes, 'chunk under test'));
      }),
    );
  });

  it('round-trips an empty chunk (a 12-byte blob, header only)', () => {
    for (const l of [0, 1, 5]) {
      const blob = encodeBlob(new Uint8Array(0), l);
      expect(blob.length).toBe(BLOB_HEADER_SIZE);
      expect(decodeBlob(blob, 'x', 0).length).toBe(0);
    }
  });

  it('decodes a blob that sits inside a larger buffer (a view with an offset)', () => {
    fc.assert(
      fc.property(anyBytes, level, fc.uint8Array({ maxLength: 64 }), (plain, zstdLevel, prefix) => {
        const blob = encodeBlob(plain, zstdLevel);
        const big = Buffer.concat([Buffer.from(prefix), blob, Buffer.from('trailer')]);
        const view = big.subarray(prefix.length, prefix.length + blob.length);
        expect(same(decodeBlob(view, 'x', plain.length), plain)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('catches every single-bit and every whole-byte change at every position of a raw and a zstd blob of a real chunk', () => {
    const text = regionBytes('text', 9, 64 * 1024);
    const random = regionBytes('random', 9, 4096);
    for (const [plain, lvl, enc] of [
      [text, 3, 'zstd'],
      [random, 3, 'raw'],
    ] as const) {
      const blob = encodeBlob(plain, lvl);
      expect(blobEncoding(blob)).toBe(enc);
      const step = Math.max(1, Math.floor(blob.length / 2048));
      for (let pos = 0; pos < blob.length; pos += pos < 64 ? 1 : step) {
        for (const xor of [0x01, 0x80, 0xff]) {
          const bad = Buffer.from(blob);
          bad[pos] = (bad[pos] as number) ^ xor;
          expectCorrupt(() => decodeBlob(bad, 'chunk under test', plain.length));
        }
      }
    }
  });
});
