/**
 * Encrypted chunk blob (issue 13), beside the plain ones of blob.ts:
 *   magic[8] ("CVBLOB\0E" encrypted raw, "CVBLOB\0C" compressed then encrypted) | CRC-32 u32 LE of
 *   magic and the rest | nonce[12] | GCM tag[16] | AES-256-GCM ciphertext
 * - The chunk's name is HMAC-SHA-256 of its plain bytes under the master key's 'chunk-id' subkey:
 *   identical data dedups under one key, two keys never share a chunk, and a name says nothing about
 *   the content (a plain SHA-256 would let anyone test for a known block).
 * - The key is the master key's 'chunk-encrypt' subkey; the nonce is random (2^32 chunks per key keep
 *   the collision chance negligible: 16 PiB of chunks). The authenticated data is the magic and the
 *   chunk's name, so a blob stored under another name, or with its encoding byte flipped, fails.
 * - The CRC covers everything, so damage is found without the key (verify without --keyfile, gc,
 *   a receiving node); the tag finds everything else, with the key.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import zstd from 'zstd-napi/binding.js';
import { ColdvaultError, loadNative } from '../core/index.js';
import { BLOB_HEADER_SIZE, CHUNK_SIZE, MAX_CHUNK_SIZE, SEAL_OVERHEAD } from './constants.js';
import { keyFingerprint, subkey } from './key-file.js';

export const BLOB_MAGIC_ENCRYPTED = Buffer.from('CVBLOB\x00E', 'latin1');
export const BLOB_MAGIC_ENCRYPTED_ZSTD = Buffer.from('CVBLOB\x00C', 'latin1');
const NONCE = 12;

/** header of an encrypted blob: magic, CRC, nonce, tag */
export const ENCRYPTED_HEADER_SIZE = BLOB_HEADER_SIZE + SEAL_OVERHEAD; // NONCE + TAG

/** The keys of one master key that chunks use. */
export interface ChunkKeys {
  /** names a chunk: HMAC-SHA-256 key */
  readonly id: Buffer;
  /** seals a chunk: AES-256-GCM key */
  readonly seal: Buffer;
  readonly fingerprint: string;
}

export function chunkKeys(master: Uint8Array): ChunkKeys {
  return { id: subkey(master, 'chunk-id'), seal: subkey(master, 'chunk-encrypt'), fingerprint: keyFingerprint(master) };
}

/** The name of a chunk under `keys`: HMAC-SHA-256 of its plain bytes. */
export function encryptedChunkId(plain: Uint8Array, keys: ChunkKeys): Buffer {
  return createHmac('sha256', keys.id).update(plain).digest();
}

/** The largest encrypted blob of `plainLength` bytes. */
export function maxEncryptedBlobSize(plainLength: number): number {
  return ENCRYPTED_HEADER_SIZE + Math.max(plainLength, zstd.compressBound(plainLength));
}

let cctx: zstd.CCtx | undefined;
let dctx: zstd.DCtx | undefined;

/**
 * Encodes `plain` (named `id`) into `out` (at least maxEncryptedBlobSize bytes): compressed first
 * when zstd makes it smaller (level 0: never), then sealed. Returns the blob's length.
 */
export function encodeEncryptedBlobInto(plain: Uint8Array, id: Uint8Array, keys: ChunkKeys, zstdLevel: number, out: Uint8Array): number {
  let magic = BLOB_MAGIC_ENCRYPTED;
  let clear: Uint8Array = plain;
  const body = out.subarray(ENCRYPTED_HEADER_SIZE);
  if (zstdLevel > 0) {
    cctx ??= new zstd.CCtx();
    const packed = cctx.compress(body, plain, zstdLevel); // compressed into place, then sealed in place
    if (packed < plain.length) {
      magic = BLOB_MAGIC_ENCRYPTED_ZSTD;
      clear = body.subarray(0, packed);
    }
  }
  const nonce = randomBytes(NONCE);
  const tag = out.subarray(BLOB_HEADER_SIZE + NONCE, ENCRYPTED_HEADER_SIZE);
  aesGcmSealInto(keys.seal, nonce, Buffer.concat([magic, id]), clear, body.subarray(0, clear.length), tag);
  out.set(magic, 0);
  out.set(nonce, BLOB_HEADER_SIZE);
  const length = ENCRYPTED_HEADER_SIZE + clear.length;
  new DataView(out.buffer, out.byteOffset, BLOB_HEADER_SIZE).setUint32(8, crc32(out.subarray(BLOB_HEADER_SIZE, length), crc32(magic)), true);
  return length;
}

/** Whether `blob` is an encrypted one (by its magic). */
export function isEncryptedBlob(blob: Uint8Array): boolean {
  if (blob.length < 8) return false;
  const magic = Buffer.from(blob.buffer, blob.byteOffset, 8);
  return magic.equals(BLOB_MAGIC_ENCRYPTED) || magic.equals(BLOB_MAGIC_ENCRYPTED_ZSTD);
}

/** What can be checked without the key: magic, length and CRC. CHUNK_CORRUPT naming `what`. */
export function checkEncryptedBlob(blob: Uint8Array, what: string): void {
  if (!isEncryptedBlob(blob)) throw corrupt(what, 'not an encrypted chunk blob (bad magic)');
  if (blob.length < ENCRYPTED_HEADER_SIZE) throw corrupt(what, `${blob.length} bytes, shorter than its header`);
  const stored = new DataView(blob.buffer, blob.byteOffset, BLOB_HEADER_SIZE).getUint32(8, true);
  if (crc32(blob.subarray(BLOB_HEADER_SIZE), crc32(blob.subarray(0, 8))) !== stored) throw corrupt(what, 'CRC mismatch');
}

/**
 * Opens `blob` (named `id`) into `out`, checking CRC, the tag (key, name, content) and the length;
 * returns the plain length. CHUNK_CORRUPT naming `what` otherwise: with the right key, a failing tag
 * means the blob was changed or stored under another name.
 */
export function decodeEncryptedBlobInto(blob: Uint8Array, id: Uint8Array, keys: ChunkKeys, what: string, out: Uint8Array, expectedLength: number): number {
  checkEncryptedBlob(blob, what);
  const magic = Buffer.from(blob.subarray(0, 8));
  const nonce = blob.subarray(BLOB_HEADER_SIZE, BLOB_HEADER_SIZE + NONCE);
  const tag = blob.subarray(BLOB_HEADER_SIZE + NONCE, ENCRYPTED_HEADER_SIZE);
  const sealed = blob.subarray(ENCRYPTED_HEADER_SIZE);
  const raw = magic.equals(BLOB_MAGIC_ENCRYPTED);
  // a raw blob of the right length opens straight into `out`; anything else into scratch (the tag is checked first)
  const clear = raw && sealed.length === expectedLength ? out.subarray(0, sealed.length) : openScratch(sealed.length);
  if (!aesGcmOpenInto(keys.seal, nonce, Buffer.concat([magic, id]), sealed, clear, tag)) {
    throw corrupt(what, `it does not authenticate under key ${keys.fingerprint} (changed, or stored under another name)`);
  }
  if (raw) {
    if (sealed.length !== expectedLength) throw corrupt(what, `length ${sealed.length}, expected ${expectedLength}`);
    return sealed.length;
  }
  let length: number;
  try {
    dctx ??= new zstd.DCtx();
    length = dctx.decompress(out.subarray(0, Math.min(out.length, MAX_CHUNK_SIZE)), clear);
  } catch (cause) {
    throw corrupt(what, 'its zstd payload does not decode', cause);
  }
  if (length !== expectedLength) throw corrupt(what, `length ${length}, expected ${expectedLength}`);
  return length;
}

/**
 * AES-256-GCM of `input` into `output` (as long; may be the same bytes), the tag into `tag`. Through
 * the native addon where it is built (native/seal.c: OpenSSL writes in place, nothing allocated:
 * 2.5 GB/s measured here); else node:crypto in slices: it answers each update with a new Buffer, and
 * one of 4 MiB is fresh memory every time (page faults: 0.8 GB/s here), slices of 128 KiB come from
 * memory malloc hands out again (2.2 GB/s), but still leave garbage for V8 to collect.
 */
export function aesGcmSealInto(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, input: Uint8Array, output: Uint8Array, tag: Uint8Array): void {
  const native = loadNative()?.sealInto;
  if (native) {
    native(key, nonce, aad, input, output, tag);
    return;
  }
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  throughInto(cipher, input, output);
  cipher.final();
  tag.set(cipher.getAuthTag());
}

/** The reverse of aesGcmSealInto: false when the tag does not authenticate (`output` then holds bytes to discard). */
export function aesGcmOpenInto(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, input: Uint8Array, output: Uint8Array, tag: Uint8Array): boolean {
  const native = loadNative()?.openInto;
  if (native) return native(key, nonce, aad, input, output, tag);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  try {
    throughInto(decipher, input, output);
    decipher.final();
    return true;
  } catch {
    return false;
  }
}

const SLICE = 128 * 1024;
function throughInto(cipher: { update(data: Uint8Array): Buffer }, input: Uint8Array, output: Uint8Array): void {
  for (let at = 0; at < input.length; at += SLICE) output.set(cipher.update(input.subarray(at, at + SLICE)), at);
}

/** this thread's buffer for the decrypted zstd payload of a blob (grown to the largest seen) */
let scratch: Buffer | undefined;
function openScratch(length: number): Buffer {
  if (!scratch || scratch.length < length) scratch = Buffer.allocUnsafeSlow(Math.max(length, maxEncryptedBlobSize(CHUNK_SIZE)));
  return scratch.subarray(0, length);
}

function corrupt(what: string, detail: string, cause?: unknown): ColdvaultError {
  return new ColdvaultError('CHUNK_CORRUPT', `${what} is corrupt: ${detail}`, { cause });
}
