/**
 * Fixed index: the ordered chunk digests of one disk.
 *   header (64 B, little-endian): magic[8] | chunk size u32 | reserved u32 | disk size u64 |
 *                                 chunk count u64 | checksum [32]
 *   body: chunk count x 32-byte digests; an all-zero slot marks an all-zero chunk (nothing stored).
 * The checksum is the SHA-256 of header bytes 0..32 followed by the body: it covers the sizes as well
 * as the digests, so a damaged index is detected before any chunk is trusted.
 */
import { createHash } from 'node:crypto';
import { ColdvaultError } from '../core/index.js';
import { DIGEST_SIZE, INDEX_HEADER_SIZE, INDEX_MAGIC, MAX_CHUNK_SIZE, ZERO_DIGEST_MARKER } from './constants.js';

export interface FixedIndex {
  chunkSize: number;
  size: number;
  /** chunk digests in disk order; `null` for an all-zero chunk */
  digests: Array<Buffer | null>;
}

export function chunkCountFor(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

export function encodeFixedIndex(index: FixedIndex): Buffer {
  const count = index.digests.length;
  if (count !== chunkCountFor(index.size, index.chunkSize)) {
    throw new Error(`index of ${index.size} bytes needs ${chunkCountFor(index.size, index.chunkSize)} digests, got ${count}`);
  }
  const out = Buffer.alloc(INDEX_HEADER_SIZE + count * DIGEST_SIZE);
  index.digests.forEach((d, i) => (d ?? ZERO_DIGEST_MARKER).copy(out, INDEX_HEADER_SIZE + i * DIGEST_SIZE));
  INDEX_MAGIC.copy(out, 0);
  out.writeUInt32LE(index.chunkSize, 8);
  out.writeBigUInt64LE(BigInt(index.size), 16);
  out.writeBigUInt64LE(BigInt(count), 24);
  bodyChecksum(out).copy(out, 32);
  return out;
}

function bodyChecksum(file: Buffer): Buffer {
  return createHash('sha256').update(file.subarray(0, 32)).update(file.subarray(INDEX_HEADER_SIZE)).digest();
}

/** Decodes and checks an index file; throws INDEX_CORRUPT naming `what` on any inconsistency. */
export function decodeFixedIndex(file: Buffer, what: string): FixedIndex {
  const bad = (detail: string): ColdvaultError => new ColdvaultError('INDEX_CORRUPT', `index ${what} is corrupt: ${detail}`);
  if (file.length < INDEX_HEADER_SIZE || !file.subarray(0, 8).equals(INDEX_MAGIC)) throw bad('bad magic');
  const chunkSize = file.readUInt32LE(8);
  const size = Number(file.readBigUInt64LE(16));
  const count = Number(file.readBigUInt64LE(24));
  if (chunkSize === 0 || chunkSize > MAX_CHUNK_SIZE) throw bad(`chunk size ${chunkSize}`);
  if (count !== chunkCountFor(size, chunkSize)) throw bad(`${count} chunks for ${size} bytes`);
  if (file.length !== INDEX_HEADER_SIZE + count * DIGEST_SIZE) throw bad(`length ${file.length}`);
  if (!bodyChecksum(file).equals(file.subarray(32, 64))) throw bad('checksum mismatch');
  const digests: Array<Buffer | null> = [];
  for (let i = 0; i < count; i++) {
    const start = INDEX_HEADER_SIZE + i * DIGEST_SIZE;
    const slot = Buffer.from(file.subarray(start, start + DIGEST_SIZE));
    digests.push(slot.equals(ZERO_DIGEST_MARKER) ? null : slot);
  }
  return { chunkSize, size, digests };
}
