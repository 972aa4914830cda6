/** A free list of chunk-sized buffers that own their ArrayBuffer (transferable to workers). */
import { DIRECT_ALIGN } from '../core/index.js';
import { CHUNK_SIZE, maxBlobSize } from '../format/index.js';

export class BufferPool {
  private readonly free: ArrayBuffer[] = [];

  constructor(readonly size = CHUNK_SIZE) {}

  take(): ArrayBuffer {
    return this.free.pop() ?? new ArrayBuffer(this.size);
  }

  give(buf: ArrayBuffer): void {
    if (buf.byteLength === this.size) this.free.push(buf);
  }
}

/**
 * Buffers for chunk blobs: the largest blob a full chunk can give, and room to start it on an
 * O_DIRECT boundary (alignedOffset) and pad it to a whole block.
 */
export function blobBufferPool(): BufferPool {
  return new BufferPool(maxBlobSize(CHUNK_SIZE) + 2 * DIRECT_ALIGN);
}

const ZEROES = Buffer.alloc(CHUNK_SIZE);

/** True when the first `length` bytes are all zero (memcmp speed, about 17 GB/s). */
export function isAllZero(buf: ArrayBuffer, length: number): boolean {
  return Buffer.from(buf, 0, length).equals(ZEROES.subarray(0, length));
}
