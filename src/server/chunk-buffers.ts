/**
 * Buffers for chunk-sized bodies of the store routes: what a sender pushes (octet-body.ts) and what a
 * reader fetches (store-reads.ts). Chunk-sized ones come from a few spare buffers that `releaseBody`
 * hands back once the chunk is stored or sent: a push of 500 MiB then allocates a handful of
 * buffers, not one per chunk, whose external memory drove V8 into a major garbage collection every
 * few dozen chunks (a fifth of serve's CPU during a push, measured with perf).
 * - A received chunk's body is a SharedArrayBuffer: the check worker reads it in place. Moving an
 *   ArrayBuffer to the worker and back also made a new 4 MiB buffer object on this thread per chunk,
 *   and the collector ran as often as with fresh allocations (`--trace-gc`: a major GC every 100-300
 *   ms of a push). The body starts on a DIRECT_ALIGN boundary (the native addon tells a shared
 *   buffer's address through a view, native/views.c), so the chunk is written with O_DIRECT: the
 *   kernel's copy of every received byte into the page cache was a tenth of serve's CPU in a push.
 *   Without that addon it is written through the page cache (and fdatasync'd).
 * - A chunk read for a reader is an ArrayBuffer starting on a DIRECT_ALIGN boundary: read with O_DIRECT.
 * - Any other body is an ArrayBuffer of its own (`ownedBody`): transferable whole, without a copy.
 */
import { alignedOffset, alignUp, DIRECT_ALIGN } from '../core/index.js';
import { CHUNK_SIZE, maxBlobSize } from '../format/index.js';

/** the ArrayBuffers handed out here: each holds one body and nothing else */
const owned = new WeakSet<ArrayBufferLike>();

/** the largest chunk body (a blob of a full chunk), and the size of a spare buffer: room to align it and pad it to a block */
export const CHUNK_BODY_MAX = maxBlobSize(CHUNK_SIZE);
const SPARE_SIZE = alignUp(CHUNK_BODY_MAX) + DIRECT_ALIGN;
/** bodies from this size up take a spare buffer (smaller ones are the files and compressed-small chunks) */
const SPARE_FROM = 256 * 1024;
/** spare buffers of each kind kept between requests (a sender keeps 8 chunks in flight, a reader 8) */
const SPARES_KEPT = 8;
const receiveSpares: SharedArrayBuffer[] = [];
const readSpares: ArrayBuffer[] = [];

/** A buffer for a request body of `length` bytes: a spare shared one when chunk-sized, else an aligned ArrayBuffer of its own. */
export function bodyBuffer(length: number): Buffer {
  if (length >= SPARE_FROM && length <= CHUNK_BODY_MAX) {
    const whole = receiveSpares.pop() ?? new SharedArrayBuffer(SPARE_SIZE);
    return Buffer.from(whole, alignedOffset(whole), length);
  }
  const whole = new ArrayBuffer(alignUp(length) + DIRECT_ALIGN);
  owned.add(whole);
  return Buffer.from(whole, alignedOffset(whole), length);
}

/** A spare buffer to read a chunk blob into for a reader, aligned for O_DIRECT: CHUNK_BODY_MAX bytes from `byteOffset`. */
export function readBuffer(): Buffer {
  const whole = readSpares.pop() ?? new ArrayBuffer(SPARE_SIZE);
  return Buffer.from(whole, alignedOffset(whole), CHUNK_BODY_MAX);
}

/**
 * Hands a body's buffer back for the next request, once nothing uses it any more (the chunk is
 * stored); `body` may be the view the check worker gave back. Anything else is left to the collector.
 */
export function releaseBody(body: Uint8Array): void {
  const whole = body.buffer;
  if (whole.byteLength !== SPARE_SIZE) return;
  const spares: ArrayBufferLike[] = whole instanceof SharedArrayBuffer ? receiveSpares : readSpares;
  if (spares.length < SPARES_KEPT && !spares.includes(whole)) spares.push(whole);
}

/** Whether `body` came from bodyBuffer: its ArrayBuffer holds it alone and may be transferred whole. */
export function ownedBody(body: Uint8Array): boolean {
  return owned.has(body.buffer);
}
