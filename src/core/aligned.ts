/**
 * Alignment for O_DIRECT writes: the buffer's address, the file offset and the length must all be
 * multiples of the device's logical block size; DIRECT_ALIGN (4096) covers 512-byte and 4K devices.
 * Node cannot see a buffer's address, so the native addon tells it; without the addon nothing counts
 * as aligned and callers write through the page cache.
 */
import { loadNative } from './native.js';

export const DIRECT_ALIGN = 4096;

/** Bytes to skip at the start of `buf` so that a view begins on a DIRECT_ALIGN boundary (0 without the addon). */
export function alignedOffset(buf: ArrayBufferLike): number {
  const native = loadNative();
  if (buf instanceof ArrayBuffer) return native?.alignOffset(buf, DIRECT_ALIGN) ?? 0;
  return native?.viewAlignOffset?.(new Uint8Array(buf), DIRECT_ALIGN) ?? 0;
}

/** `length` rounded up to a multiple of DIRECT_ALIGN. */
export function alignUp(length: number): number {
  return Math.ceil(length / DIRECT_ALIGN) * DIRECT_ALIGN;
}

/** Whether `data` may be written or read with O_DIRECT at file `position` (`padded` to a whole block if asked). */
export function directAligned(data: Uint8Array, position: number, padded = false): boolean {
  const length = padded ? alignUp(data.length) : data.length;
  if (position % DIRECT_ALIGN !== 0 || length % DIRECT_ALIGN !== 0) return false;
  if (data.byteOffset + length > data.buffer.byteLength) return false;
  const native = loadNative();
  if (native === null) return false;
  if (data.buffer instanceof ArrayBuffer) return (native.alignOffset(data.buffer, DIRECT_ALIGN) - data.byteOffset) % DIRECT_ALIGN === 0;
  // shared memory: its address is told by an addon with views.c (an older build: buffered)
  return native.viewAlignOffset !== undefined && native.viewAlignOffset(data, DIRECT_ALIGN) === 0;
}
