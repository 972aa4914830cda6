/**
 * Chunk blobs that arrive from elsewhere (another node's push, server/uploads): the sender is not
 * trusted. A blob is taken only when its magic and CRC hold, it decodes, its plain bytes are at most
 * one chunk, and their SHA-256 is the name it is to be stored under. Chunks are shared by every
 * version that holds the same bytes, so a blob stored under a wrong name would poison all of them.
 */
import { ColdvaultError, isColdvaultError } from '../core/index.js';
import { CHUNK_SIZE, chunkDigest, decodeBlob, isDigestHex, maxBlobSize } from '../format/index.js';

/** Checks a received blob against the chunk name `hex`; returns its plain length, else throws CHUNK_FORGED. */
export function checkReceivedBlob(hex: string, blob: Uint8Array): number {
  if (!isDigestHex(hex)) throw forged(hex, 'the name is not 64 lowercase hex digits');
  if (blob.length > maxBlobSize(CHUNK_SIZE)) throw forged(hex, `the blob has ${blob.length} bytes, more than any chunk's (${maxBlobSize(CHUNK_SIZE)})`);
  const plain = decodeReceived(hex, blob);
  if (plain.length === 0 || plain.length > CHUNK_SIZE) throw forged(hex, `it holds ${plain.length} bytes (a chunk holds 1 to ${CHUNK_SIZE})`);
  if (chunkDigest(plain).toString('hex') !== hex) throw forged(hex, 'its content does not hash to its name (SHA-256)');
  return plain.length;
}

function decodeReceived(hex: string, blob: Uint8Array): Buffer {
  try {
    return decodeBlob(blob, `received chunk ${hex}`);
  } catch (err) {
    if (!isColdvaultError(err, 'CHUNK_CORRUPT')) throw err;
    throw forged(hex, err.message, err);
  }
}

function forged(hex: string, why: string, cause?: unknown): ColdvaultError {
  return new ColdvaultError('CHUNK_FORGED', `refusing chunk ${hex}: ${why}; nothing was stored`, { cause });
}
