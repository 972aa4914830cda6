/**
 * Fixed index codec (format/fixed-index.ts): an index read back lists the same chunks in the same order
 * for the same disk size, and any damage to the file is reported as INDEX_CORRUPT before a restore
 * trusts a single digest of it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isColdvaultError } from '../../src/core/errors.js';
import {
  CHUNK_SIZE,
  chunkCountFor,
  decodeFixedIndex,
  DIGEST_SIZE,
  encodeFixedIndex,
  INDEX_HEADER_SIZE,
  MAX_CHUNK_SIZE,
  type FixedIndex,
} from '../../src/format/index.js';

const digest = fc
  .uint8Array({ minLength: DIGEST_SIZE, maxLength: DIGEST_SIZE })
  .filter((d) => d.some((b) => b !== 0)) // an all-zero slot is the format's marker for a zero chunk
  .map((d) => Buffer.from(d));

/** A random index: chunk size (mostly the real one), disk size 0, exact multiples or with a short tail. */
const fixedIndex: fc.Arbitrary<FixedIndex> = fc
  .tuple(fc.oneof(fc.constant(CHUNK_SIZE), fc.integer({ min: 1, max: MAX_CHUNK_SIZE })), fc.integer({ min: 0, max: 48 }), fc.oneof(fc.constant(0), fc.nat()))
  .chain(([chunkSize, fullChunks, tailSeed]) => {
    const tail = tailSeed % chunkSize;
    const size = fullChunks * chunkSize + tail;
    const count = chunkCountFor(size, chunkSize);
    return fc.array(fc.option(digest, { nil: null, freq: 3 }), { minLength: count, maxLength: count }).map((digests) => ({ chunkSize, size, digests }));
  });

function expectIndexCorrupt(fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'decodeFixedIndex accepted a damaged index').toBeDefined();
  expect(isColdvaultError(thrown, 'INDEX_CORRUPT'), `expected INDEX_CORRUPT, got ${String(thrown)}`).toBe(true);
  expect((thrown as Error).message).toContain("'idx under test'");
}

describe('fixed index', () => {
  it('decodes to the chunk size, disk size and digests (null for zero chunks) that were encoded', () => {
    fc.assert(
      fc.property(fixedIndex, (index) => {
        const file = encodeFixedIndex(index);
        expect(file.length).toBe(INDEX_HEADER_SIZE + index.digests.length * DIGEST_SIZE);
        const back = decodeFixedIndex(file, "'idx under test'");
        expect(back.chunkSize).toBe(index.chunkSize);
        expect(back.size).toBe(index.size);
        expect(back.digests.length).toBe(index.digests.length);
        back.digests.forEach((d, i) => {
          const want = index.digests[i];
          if (want === null) expect(d).toBeNull();
          else expect(d !== null && d.equals(want as Buffer)).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('covers the sizes a disk can have: 0, one byte, a chunk, a chunk plus one byte', () => {
    for (const size of [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 12345]) {
      const count = chunkCountFor(size, CHUNK_SIZE);
      expect(count).toBe(size === 0 ? 0 : Math.floor((size - 1) / CHUNK_SIZE) + 1);
      const digests = Array.from({ length: count }, (_, i) => (i % 2 ? null : Buffer.alloc(DIGEST_SIZE, i + 1)));
      const back = decodeFixedIndex(encodeFixedIndex({ chunkSize: CHUNK_SIZE, size, digests }), "'idx under test'");
      expect(back).toEqual({ chunkSize: CHUNK_SIZE, size, digests });
    }
  });

  it('refuses to encode a digest list that does not fit the disk size', () => {
    expect(() => encodeFixedIndex({ chunkSize: CHUNK_SIZE, size: CHUNK_SIZE + 1, digests: [null] })).toThrow();
    expect(() => encodeFixedIndex({ chunkSize: CHUNK_SIZE, size: 0, digests: [null] })).toThrow();
  });

  it('reports a changed byte anywhere in the body (the digests) as INDEX_CORRUPT', () => {
    fc.assert(
      fc.property(
        fixedIndex.filter((i) => i.digests.length > 0),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (index, at, xor) => {
          const file = encodeFixedIndex(index);
          const pos = INDEX_HEADER_SIZE + (at % (file.length - INDEX_HEADER_SIZE));
          file[pos] = (file[pos] as number) ^ xor;
          expectIndexCorrupt(() => decodeFixedIndex(file, "'idx under test'"));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('reports a changed byte anywhere in the file, header included, as INDEX_CORRUPT', () => {
    fc.assert(
      fc.property(fixedIndex, fc.nat(), fc.integer({ min: 1, max: 255 }), (index, at, xor) => {
        const file = encodeFixedIndex(index);
        const pos = at % file.length;
        file[pos] = (file[pos] as number) ^ xor;
        expectIndexCorrupt(() => decodeFixedIndex(file, "'idx under test'"));
      }),
      { numRuns: 1000 },
    );
  });

  it('reports a changed disk-size byte of a real disk index as INDEX_CORRUPT (a wrong size would restore a wrong-sized disk)', () => {
    // 2 chunks: 4 MiB + 1 MiB; the low byte of the disk size (offset 16) changes the size by at most 255 bytes.
    const index: FixedIndex = { chunkSize: CHUNK_SIZE, size: CHUNK_SIZE + 1024 * 1024, digests: [Buffer.alloc(32, 1), Buffer.alloc(32, 2)] };
    const file = encodeFixedIndex(index);
    file[16] = (file[16] as number) ^ 0x01;
    expectIndexCorrupt(() => decodeFixedIndex(file, "'idx under test'"));
  });

  it('refuses truncated and foreign files: 0, 1 and 3 bytes, header only, a digest cut short, an extra byte', () => {
    fc.assert(
      fc.property(
        fixedIndex.filter((i) => i.digests.length > 0),
        fc.nat(),
        (index, cut) => {
          const file = encodeFixedIndex(index);
          for (const length of [0, 1, 3, 8, INDEX_HEADER_SIZE - 1, INDEX_HEADER_SIZE]) {
            expectIndexCorrupt(() => decodeFixedIndex(file.subarray(0, length), "'idx under test'"));
          }
          expectIndexCorrupt(() => decodeFixedIndex(file.subarray(0, INDEX_HEADER_SIZE + (cut % (file.length - INDEX_HEADER_SIZE))), "'idx under test'"));
          expectIndexCorrupt(() => decodeFixedIndex(Buffer.concat([file, Buffer.from([0])]), "'idx under test'"));
        },
      ),
      { numRuns: 200 },
    );
    expectIndexCorrupt(() => decodeFixedIndex(Buffer.from('{"not": "an index"}'.padEnd(200, ' ')), "'idx under test'"));
  });
});
