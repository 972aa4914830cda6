/**
 * Buffers for chunk-sized bodies of the store routes: what a sender pushes (octet-body.ts) and what a
 * reader fetches (store-reads.ts). Each starts on a DIRECT_ALIGN boundary with room to pad it to a
 * block, so the chunk store writes and reads it with O_DIRECT as it does a local backup's chunks (no
 * copy through the page cache), and is alone on its ArrayBuffer (`ownedBody`), so the received-chunk
 * check can transfer it to a worker thread without a copy. Chunk-sized ones come from a few spare
 * buffers that `releaseBody` hands back once the chunk is stored or sent: a push of 500 MiB then
 * allocates a handful of buffers, not one per chunk, whose external memory drove V8 into a major
 * garbage collection every few dozen chunks (a fifth of serve's CPU during a push, measured with perf).
 */
import { alignedOffset, alignUp, DIRECT_ALIGN } from '../core/index.js';
import { CHUNK_SIZE, maxBlobSize } from '../format/index.js';

/** the ArrayBuffers handed out here: each holds one body and nothing else */
const owned = new WeakSet<ArrayBufferLike>();

/** the largest chunk body (a blob of a full chunk), and the size of a spare buffer: room to align it and pad it to a block */
export const CHUNK_BODY_MAX = maxBlobSize(CHUNK_SIZE);
const CHUNK_BODY = CHUNK_BODY_MAX;
const SPARE_SIZE = alignUp(CHUNK_BODY) + DIRECT_ALIGN;
/** bodies from this size up take a spare buffer (smaller ones are the files and compressed-small chunks) */
const SPARE_FROM = 256 * 1024;
/** spare buffers kept between requests (a sender keeps 8 chunks in flight) */
const SPARES_KEPT = 8;
const spares: ArrayBuffer[] = [];

/** A buffer for a body of `length` bytes, aligned, alone on its ArrayBuffer (a spare one when chunk-sized). */
export function bodyBuffer(length: number): Buffer {
  const pooled = length >= SPARE_FROM && length <= CHUNK_BODY;
  const whole = pooled ? (spares.pop() ?? new ArrayBuffer(SPARE_SIZE)) : new ArrayBuffer(alignUp(length) + DIRECT_ALIGN);
  owned.add(whole);
  const at = alignedOffset(whole);
  return Buffer.from(whole, at, length);
}

/**
 * Hands a body's buffer back for the next request, once nothing uses it any more (the chunk is
 * stored); `body` may be the view the check worker gave back. Anything else is left to the collector.
 */
export function releaseBody(body: Uint8Array): void {
  const whole = body.buffer;
  if (whole instanceof ArrayBuffer && whole.byteLength === SPARE_SIZE && spares.length < SPARES_KEPT && !spares.includes(whole)) spares.push(whole);
}

/** Whether `body` came from bodyBuffer: its ArrayBuffer holds it alone and may be transferred whole. */
export function ownedBody(body: Uint8Array): boolean {
  return owned.has(body.buffer);
}
