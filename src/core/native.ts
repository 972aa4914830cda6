/**
 * The native addon (native/sparse.c, built by `npm install` through node-gyp): lseek(SEEK_DATA /
 * SEEK_HOLE) for hole detection (pipeline/sparse.ts), the alignment of a buffer's address for
 * O_DIRECT writes (aligned.ts), and a file's extent map (FIEMAP, native/extents.c) for the
 * changed-extent nightly backup (pipeline/changed-extents.ts), AES-256-GCM in place for encrypted
 * chunks (format/encrypted-blob.ts), and the address of and a memcpy into shared memory (views.c).
 * Optional: when it is not built, callers take their slower, never wrong path (no extent map: every
 * chunk is read).
 */
import { createRequire } from 'node:module';

/** One extent of a file as FIEMAP reports it (bytes; `flags` are the kernel's FIEMAP_EXTENT_* bits). */
export interface FileExtent {
  logical: number;
  physical: number;
  length: number;
  flags: number;
}

/** The FIEMAP_EXTENT_* flags (linux/fiemap.h), with the kernel's values. */
export const FIEMAP_EXTENT = {
  LAST: 0x1,
  UNKNOWN: 0x2,
  DELALLOC: 0x4,
  ENCODED: 0x8,
  DATA_ENCRYPTED: 0x80,
  NOT_ALIGNED: 0x100,
  DATA_INLINE: 0x200,
  DATA_TAIL: 0x400,
  UNWRITTEN: 0x800,
  MERGED: 0x1000,
  SHARED: 0x2000,
} as const;

export interface NativeAddon {
  dataChunks(fd: number, size: number, chunkSize: number): number[];
  alignOffset(buf: ArrayBuffer, align: number): number;
  /**
   * The extent map of the open file `fd`, in logical order (FS_IOC_FIEMAP, paged through to the last
   * extent); with `sync`, FIEMAP_FLAG_SYNC writes the file's dirty data first. Throws an Error with the
   * errno name as `code` (EOPNOTSUPP: the filesystem has no FIEMAP). Absent in an addon built before it.
   */
  extents?: (fd: number, sync: boolean) => FileExtent[];
  /**
   * AES-256-GCM into the caller's buffers (native/seal.c, OpenSSL of the node binary): `output` (as long
   * as `input`, may be it) gets the ciphertext, `tag` the tag. Absent in an addon built before it.
   */
  sealInto?: (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, input: Uint8Array, output: Uint8Array, tag: Uint8Array) => boolean;
  /** The reverse; false when the tag does not authenticate (`output` then holds bytes to discard). */
  openInto?: (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, input: Uint8Array, output: Uint8Array, tag: Uint8Array) => boolean;
  /** Bytes to skip from `view`'s first byte to an `align` boundary; also for views over a SharedArrayBuffer (native/views.c). Absent in an addon built before it. */
  viewAlignOffset?: (view: Uint8Array, align: number) => number;
  /** memcpy of `source` into `target` at `offset` (V8 copies into shared memory with a slower relaxed memmove); the bytes copied. Absent in an addon built before it. */
  copyInto?: (target: Uint8Array, offset: number, source: Uint8Array) => number;
}

let native: NativeAddon | null | undefined;

/** The addon, or null when it is not built, or when COLDVAULT_NATIVE=off (tests of the other paths, debugging). */
export function loadNative(): NativeAddon | null {
  if (native === undefined && process.env.COLDVAULT_NATIVE === 'off') native = null;
  if (native === undefined) {
    try {
      native = createRequire(import.meta.url)('../../build/Release/coldvault_native.node') as NativeAddon;
    } catch {
      native = null;
    }
  }
  return native;
}
