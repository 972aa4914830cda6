/**
 * Chunk blobs that arrive from elsewhere (another node's push, server/uploads): the sender is not
 * trusted. A blob is taken only when its magic and CRC hold, it decodes, its plain bytes are at most
 * one chunk, and their SHA-256 is the name it is to be stored under. Chunks are shared by every
 * version that holds the same bytes, so a blob stored under a wrong name would poison all of them.
 * The check is CPU work (CRC, zstd, SHA-256 of up to 4 MiB): a server runs it in worker threads
 * (pipeline's WorkerPool.checkReceived) and hands the checked blob to ChunkStore.insertReceived.
 *
 * An encrypted blob (format/encrypted-blob.ts) is named by an HMAC under a key this node does not
 * hold: only its magic, size and CRC can be checked here. Its name says nothing a sender without
 * that key could predict, so nobody else can plant a blob under a name a later version of that key
 * will use. What this cannot stop (README, threat model): a sender holding a backup token for this
 * store could store an encrypted-looking blob under the SHA-256 name of plain data that a later
 * unencrypted version would then reuse; verify finds such a chunk (bad magic) and quarantines it, and
 * the next backup of that data writes it again.
 */
import { ColdvaultError, isColdvaultError } from '../core/index.js';
import {
  blobPlainView,
  CHUNK_SIZE,
  checkEncryptedBlob,
  chunkDigest,
  isDigestHex,
  isEncryptedBlob,
  maxBlobSize,
  maxEncryptedBlobSize,
} from '../format/index.js';

/** Checks a received blob before it may be stored; resolves to the blob to write (it may travel to a worker and back). */
export type ReceivedCheck = (hex: string, blob: Uint8Array) => Promise<Uint8Array>;

/** The check on the calling thread. */
export const checkOnThisThread: ReceivedCheck = (hex, blob) =>
  new Promise((resolve) => {
    checkReceivedBlob(hex, blob); // a throw here rejects
    resolve(blob);
  });

/**
 * Checks a received blob against the chunk name `hex`; returns its plain length (an encrypted blob's
 * own length: its plain length needs the key), else throws CHUNK_FORGED. `scratch` (at least one chunk) takes a zstd blob's plain bytes; a raw one is hashed in place.
 */
export function checkReceivedBlob(hex: string, blob: Uint8Array, scratch: Uint8Array = Buffer.allocUnsafe(CHUNK_SIZE)): number {
  if (!isDigestHex(hex)) throw forged(hex, 'the name is not 64 lowercase hex digits');
  if (isEncryptedBlob(blob)) return checkSealed(hex, blob);
  if (blob.length > maxBlobSize(CHUNK_SIZE)) throw forged(hex, `the blob has ${blob.length} bytes, more than any chunk's (${maxBlobSize(CHUNK_SIZE)})`);
  const plain = plainOf(hex, blob, scratch.subarray(0, CHUNK_SIZE));
  if (plain.length === 0 || plain.length > CHUNK_SIZE) throw forged(hex, `it holds ${plain.length} bytes (a chunk holds 1 to ${CHUNK_SIZE})`);
  if (chunkDigest(plain).toString('hex') !== hex) throw forged(hex, 'its content does not hash to its name (SHA-256)');
  return plain.length;
}

/** An encrypted blob: size and CRC (the content needs the key); returns the blob's length. */
function checkSealed(hex: string, blob: Uint8Array): number {
  const most = maxEncryptedBlobSize(CHUNK_SIZE);
  if (blob.length > most) throw forged(hex, `the encrypted blob has ${blob.length} bytes, more than any chunk's (${most})`);
  try {
    checkEncryptedBlob(blob, `received chunk ${hex}`);
  } catch (err) {
    if (!isColdvaultError(err, 'CHUNK_CORRUPT')) throw err;
    throw forged(hex, err.message, err);
  }
  return blob.length;
}

function plainOf(hex: string, blob: Uint8Array, scratch: Uint8Array): Uint8Array {
  try {
    return blobPlainView(blob, `received chunk ${hex}`, scratch);
  } catch (err) {
    if (!isColdvaultError(err, 'CHUNK_CORRUPT')) throw err;
    throw forged(hex, err.message, err);
  }
}

function forged(hex: string, why: string, cause?: unknown): ColdvaultError {
  return new ColdvaultError('CHUNK_FORGED', `refusing chunk ${hex}: ${why}; nothing was stored`, { cause });
}
