/**
 * The native addon (native/sparse.c, built by `npm install` through node-gyp): lseek(SEEK_DATA /
 * SEEK_HOLE) for hole detection (pipeline/sparse.ts), and the alignment of a buffer's address for
 * O_DIRECT writes (aligned.ts). Optional: when it is not built, callers take their slower, never
 * wrong path.
 */
import { createRequire } from 'node:module';

export interface NativeAddon {
  dataChunks(fd: number, size: number, chunkSize: number): number[];
  alignOffset(buf: ArrayBuffer, align: number): number;
}

let native: NativeAddon | null | undefined;

export function loadNative(): NativeAddon | null {
  if (native === undefined) {
    try {
      native = createRequire(import.meta.url)('../../build/Release/coldvault_native.node') as NativeAddon;
    } catch {
      native = null;
    }
  }
  return native;
}
