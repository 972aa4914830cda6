/**
 * A chunk read from another node is trusted no more than one read from a disk: its blob must hold
 * (magic, CRC-32), decode to 1 to CHUNK_SIZE bytes, and those bytes must hash (SHA-256) to the name it
 * was asked for. checkChunkBlob decodes into a caller's scratch buffer, so checking allocates nothing
 * per chunk; it runs on the calling thread (a restore checks in its worker pool instead: store-client.ts).
 */
import { ColdvaultError, isColdvaultError } from '../../core/index.js';
import { blobPlainLength, CHUNK_SIZE, chunkDigest, decodeBlobInto, MAX_CHUNK_SIZE } from '../../format/index.js';

/** A scratch buffer for checkChunkBlob: room for any plain chunk. */
export function chunkScratch(): Buffer {
  return Buffer.allocUnsafe(MAX_CHUNK_SIZE);
}

/**
 * Checks `blob` against the chunk name `hex`; returns its plain length (the plain bytes are then at the
 * start of `scratch`). CHUNK_CORRUPT naming the digest and `from` ("node https://...") otherwise.
 */
export function checkChunkBlob(hex: string, blob: Uint8Array, from: string, scratch: Buffer = chunkScratch()): number {
  const what = `chunk ${hex} from ${from}`;
  try {
    const length = blobPlainLength(blob, what);
    if (length === 0 || length > CHUNK_SIZE) throw corrupt(what, `it holds ${length} bytes (a chunk holds 1 to ${CHUNK_SIZE})`);
    decodeBlobInto(blob, what, scratch, length);
    if (chunkDigest(scratch.subarray(0, length)).toString('hex') !== hex) throw corrupt(what, 'its content does not hash to its name (SHA-256)');
    return length;
  } catch (err) {
    if (isColdvaultError(err, 'CHUNK_CORRUPT')) throw err;
    throw corrupt(what, String(err), err);
  }
}

function corrupt(what: string, detail: string, cause?: unknown): ColdvaultError {
  return new ColdvaultError('CHUNK_CORRUPT', `${what} is corrupt: ${detail}`, { cause });
}
