/**
 * Chunk blob: the file that holds one chunk in the store.
 *   magic[8] ("CVBLOB\0R" raw or "CVBLOB\0Z" zstd) | CRC-32 u32 LE of the payload | payload
 * The payload is zstd only when that is smaller than the plain chunk. The CRC catches a damaged file
 * cheaply; the SHA-256 of the decoded bytes against the chunk's name catches everything else.
 */
import { crc32 } from 'node:zlib';
import { compress, decompress } from 'zstd-napi';
import { ColdvaultError } from '../core/errors.js';
import { BLOB_HEADER_SIZE, BLOB_MAGIC_RAW, BLOB_MAGIC_ZSTD, MAX_CHUNK_SIZE } from './constants.js';

export type BlobEncoding = 'raw' | 'zstd';

/** Encodes a plain chunk; `zstdLevel` 0 stores it raw. */
export function encodeBlob(plain: Uint8Array, zstdLevel: number): Buffer {
  if (zstdLevel > 0) {
    const packed = compress(plain, { compressionLevel: zstdLevel });
    if (packed.length < plain.length) return frame(BLOB_MAGIC_ZSTD, packed);
  }
  return frame(BLOB_MAGIC_RAW, plain);
}

function frame(magic: Buffer, payload: Uint8Array): Buffer {
  const blob = Buffer.allocUnsafe(BLOB_HEADER_SIZE + payload.length);
  magic.copy(blob, 0);
  blob.writeUInt32LE(crc32(payload), 8);
  blob.set(payload, BLOB_HEADER_SIZE);
  return blob;
}

export function blobEncoding(blob: Uint8Array): BlobEncoding | undefined {
  if (blob.length < BLOB_HEADER_SIZE) return undefined;
  const magic = Buffer.from(blob.buffer, blob.byteOffset, 8);
  if (magic.equals(BLOB_MAGIC_RAW)) return 'raw';
  if (magic.equals(BLOB_MAGIC_ZSTD)) return 'zstd';
  return undefined;
}

/**
 * Decodes a blob, checking magic, CRC and (when given) the plain length. Throws CHUNK_CORRUPT with
 * `what` (e.g. "chunk 3fa2..") in the message. The SHA-256 check is the caller's (see chunk-codec).
 */
export function decodeBlob(blob: Uint8Array, what: string, expectedLength?: number): Buffer {
  const encoding = blobEncoding(blob);
  if (!encoding) throw corrupt(what, 'bad magic');
  const view = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const payload = view.subarray(BLOB_HEADER_SIZE);
  if (crc32(payload) !== view.readUInt32LE(8)) throw corrupt(what, 'CRC mismatch');
  const plain = encoding === 'raw' ? Buffer.from(payload) : inflate(payload, what);
  if (expectedLength !== undefined && plain.length !== expectedLength) {
    throw corrupt(what, `length ${plain.length}, expected ${expectedLength}`);
  }
  return plain;
}

function inflate(payload: Buffer, what: string): Buffer {
  try {
    const plain = decompress(payload);
    if (plain.length > MAX_CHUNK_SIZE) throw new Error(`too large: ${plain.length}`);
    return plain;
  } catch (cause) {
    throw corrupt(what, 'zstd payload does not decode', cause);
  }
}

function corrupt(what: string, detail: string, cause?: unknown): ColdvaultError {
  return new ColdvaultError('CHUNK_CORRUPT', `${what} is corrupt: ${detail}`, { cause });
}
