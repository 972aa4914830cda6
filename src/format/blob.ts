/**
 * Chunk blob: the file that holds one chunk in the store.
 *   magic[8] ("CVBLOB\0R" raw or "CVBLOB\0Z" zstd) | CRC-32 u32 LE of magic and payload | payload
 * The payload is zstd only when that is smaller than the plain chunk. The CRC catches a damaged file
 * cheaply; the SHA-256 of the decoded bytes against the chunk's name catches everything else.
 * The `...Into` variants write into caller-owned buffers, so the pipeline reuses a few buffers for
 * every chunk instead of leaving 4 MiB of garbage per chunk (which is what keeps its memory flat).
 */
import { crc32 } from 'node:zlib';
import zstd from 'zstd-napi/binding.js';
import { ColdvaultError } from '../core/index.js';
import { BLOB_HEADER_SIZE, BLOB_MAGIC_RAW, BLOB_MAGIC_ZSTD, MAX_CHUNK_SIZE, SEAL_OVERHEAD } from './constants.js';

export type BlobEncoding = 'raw' | 'zstd';

let cctx: zstd.CCtx | undefined;
let dctx: zstd.DCtx | undefined;

/**
 * The largest blob a chunk of `plainLength` bytes can give, plain or encrypted (whose header is
 * SEAL_OVERHEAD bytes longer: nonce and tag, encrypted-blob.ts): buffers and limits take this one.
 */
export function maxBlobSize(plainLength: number): number {
  return BLOB_HEADER_SIZE + SEAL_OVERHEAD + Math.max(plainLength, zstd.compressBound(plainLength));
}

/** Encodes `plain` into `out` (at least maxBlobSize bytes); returns the blob's length. Level 0: raw. */
export function encodeBlobInto(plain: Uint8Array, zstdLevel: number, out: Uint8Array): number {
  const payload = out.subarray(BLOB_HEADER_SIZE);
  let magic = BLOB_MAGIC_RAW;
  let length = plain.length;
  if (zstdLevel > 0) {
    cctx ??= new zstd.CCtx();
    const packed = cctx.compress(payload, plain, zstdLevel);
    if (packed < plain.length) {
      magic = BLOB_MAGIC_ZSTD;
      length = packed;
    }
  }
  if (magic === BLOB_MAGIC_RAW) payload.set(plain);
  out.set(magic, 0);
  new DataView(out.buffer, out.byteOffset, BLOB_HEADER_SIZE).setUint32(8, blobCrc(magic, payload.subarray(0, length)), true);
  return BLOB_HEADER_SIZE + length;
}

/** Encodes a plain chunk into a new buffer. */
export function encodeBlob(plain: Uint8Array, zstdLevel: number): Buffer {
  const out = Buffer.allocUnsafe(maxBlobSize(plain.length));
  return Buffer.from(out.subarray(0, encodeBlobInto(plain, zstdLevel, out)));
}

/** The CRC covers the magic too, so that a flipped encoding byte cannot pass for another encoding. */
function blobCrc(magic: Uint8Array, payload: Uint8Array): number {
  return crc32(payload, crc32(magic));
}

export function blobEncoding(blob: Uint8Array): BlobEncoding | undefined {
  if (blob.length < BLOB_HEADER_SIZE) return undefined;
  const magic = Buffer.from(blob.buffer, blob.byteOffset, 8);
  if (magic.equals(BLOB_MAGIC_RAW)) return 'raw';
  if (magic.equals(BLOB_MAGIC_ZSTD)) return 'zstd';
  return undefined;
}

/**
 * Decodes `blob` into `out`, checking magic, CRC and the plain length; returns that length. Throws
 * CHUNK_CORRUPT naming `what` (e.g. "chunk 3fa2.."). The SHA-256 check is the caller's.
 */
export function decodeBlobInto(blob: Uint8Array, what: string, out: Uint8Array, expectedLength: number): number {
  const { encoding, payload } = checkBlob(blob, what);
  let length: number;
  if (encoding === 'raw') {
    length = payload.length;
    if (length === expectedLength) out.set(payload);
  } else {
    length = inflateInto(payload, out.subarray(0, Math.min(out.length, MAX_CHUNK_SIZE)), what);
  }
  if (length !== expectedLength) throw corrupt(what, `length ${length}, expected ${expectedLength}`);
  return length;
}

/**
 * The payload of a raw blob, checked where it lies (magic raw, CRC, `expectedLength` bytes). A raw
 * blob's payload is the plain chunk itself, so a reader that lands a blob where the chunk belongs
 * needs no copy (pipeline/chunk-reader.ts). CHUNK_CORRUPT naming `what` otherwise; the SHA-256 check
 * is the caller's.
 */
export function rawBlobPayload(blob: Uint8Array, what: string, expectedLength: number): Uint8Array {
  const { encoding, payload } = checkBlob(blob, what);
  if (encoding !== 'raw') throw corrupt(what, 'it is not a raw blob');
  if (payload.length !== expectedLength) throw corrupt(what, `length ${payload.length}, expected ${expectedLength}`);
  return payload;
}

/** Checks magic and CRC; returns the encoding and the payload. */
function checkBlob(blob: Uint8Array, what: string): { encoding: BlobEncoding; payload: Uint8Array } {
  const encoding = blobEncoding(blob);
  if (!encoding) throw corrupt(what, 'bad magic');
  const payload = blob.subarray(BLOB_HEADER_SIZE);
  const stored = new DataView(blob.buffer, blob.byteOffset, BLOB_HEADER_SIZE).getUint32(8, true);
  if (blobCrc(blob.subarray(0, 8), payload) !== stored) throw corrupt(what, 'CRC mismatch');
  return { encoding, payload };
}

/** Decodes a blob into a new buffer (length checked when `expectedLength` is given). */
export function decodeBlob(blob: Uint8Array, what: string, expectedLength?: number): Buffer {
  const out = Buffer.allocUnsafe(MAX_CHUNK_SIZE);
  if (expectedLength !== undefined) return Buffer.from(out.subarray(0, decodeBlobInto(blob, what, out, expectedLength)));
  const { encoding, payload } = checkBlob(blob, what);
  const length = encoding === 'raw' ? payload.length : probeLength(payload, what);
  return Buffer.from(out.subarray(0, decodeBlobInto(blob, what, out, length)));
}

/**
 * The plain bytes of a blob of unknown length, checked once (magic, CRC; a zstd frame's recorded size
 * at most `scratch.length` and decoding to exactly that): the payload itself for a raw blob (no copy),
 * else decoded into `scratch`. CHUNK_CORRUPT naming `what`. For blobs from elsewhere (received.ts).
 */
export function blobPlainView(blob: Uint8Array, what: string, scratch: Uint8Array): Uint8Array {
  const { encoding, payload } = checkBlob(blob, what);
  if (encoding === 'raw') return payload;
  const size = probeLength(payload, what);
  if (size > scratch.length) throw corrupt(what, `zstd frame of ${size} bytes, more than ${scratch.length}`);
  const length = inflateInto(payload, scratch.subarray(0, size), what);
  if (length !== size) throw corrupt(what, `decodes to ${length} bytes, its frame says ${size}`);
  return scratch.subarray(0, length);
}

/** The plain length `blob` decodes to (magic and CRC checked; a zstd frame's recorded size), for decodeBlobInto. CHUNK_CORRUPT naming `what`. */
export function blobPlainLength(blob: Uint8Array, what: string): number {
  const { encoding, payload } = checkBlob(blob, what);
  return encoding === 'raw' ? payload.length : probeLength(payload, what);
}

function probeLength(payload: Uint8Array, what: string): number {
  let size: number | null;
  try {
    size = zstd.getFrameContentSize(payload);
  } catch (cause) {
    throw corrupt(what, 'zstd frame header does not parse', cause);
  }
  if (size === null || size > MAX_CHUNK_SIZE) throw corrupt(what, 'zstd frame without a valid content size');
  return size;
}

function inflateInto(payload: Uint8Array, out: Uint8Array, what: string): number {
  try {
    dctx ??= new zstd.DCtx();
    return dctx.decompress(out, payload);
  } catch (cause) {
    throw corrupt(what, 'zstd payload does not decode', cause);
  }
}

function corrupt(what: string, detail: string, cause?: unknown): ColdvaultError {
  return new ColdvaultError('CHUNK_CORRUPT', `${what} is corrupt: ${detail}`, { cause });
}
