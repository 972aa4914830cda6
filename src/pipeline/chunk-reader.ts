/**
 * Reads chunks back from a store (local or remote: a ChunkSource), verified: blob -> CRC -> decode -> SHA-256 against the chunk's
 * name, in a worker. Buffers cycle through two small pools (blobs and plain chunks), so restore and
 * verify allocate nothing per chunk. Blobs and plain chunks start on a DIRECT_ALIGN boundary of their
 * buffers: blobs are read with O_DIRECT, and a restore hands plain chunks to O_DIRECT writes as they are.
 *
 * A source whose reads land anywhere (a remote node, S3: `readsAnywhere`) gets each blob put
 * BLOB_HEADER_SIZE bytes before a boundary instead, so that a raw blob's payload, which is the plain
 * chunk, starts on the boundary: the worker checks it where it lies (CRC, length, SHA-256) and the
 * restore writes it from there. That spares each raw chunk its 4 MiB copy into a plain buffer (about
 * 0.03 CPU-s for the bench version's 102 raw chunks: notes of issue 12 in bench/RESULTS.md). A zstd or
 * encrypted blob is decoded into a plain buffer as usual.
 *
 * What a failed read means (`readTrouble`): a chunk whose content is wrong (CRC, decode, SHA-256 or an
 * impossible size: CHUNK_CORRUPT) is *damaged*; one whose file is not there (CHUNK_MISSING) is
 * *missing*; anything else (EIO, ENXIO, ENODEV, ENOMEM from a pulled disk, ESTALE, timeouts, a
 * worker that died) says nothing about the chunk: it is *unreadable*, trouble with the disk or its
 * connection, and must never be taken for damage.
 */
import PQueue from 'p-queue';
import { alignedOffset, ColdvaultError, DIRECT_ALIGN, type ErrorCode, isColdvaultError } from '../core/index.js';
import { BLOB_HEADER_SIZE, blobEncoding, CHUNK_SIZE } from '../format/index.js';
import { blobBufferPool, BufferPool } from './buffers.js';
import type { ChunkSource } from './version-source.js';
import type { ChunkCodec } from './worker-pool.js';

export class ChunkReader {
  private readonly blobs = blobBufferPool();
  private readonly plains = new BufferPool(CHUNK_SIZE + DIRECT_ALIGN);
  /** the in-place check of raw blobs, for a source whose reads land anywhere and a codec that has one */
  private readonly checkRaw: ChunkCodec['checkRawInPlace'];

  constructor(
    private readonly chunks: ChunkSource,
    private readonly pool: ChunkCodec,
    private readonly io: PQueue,
  ) {
    this.checkRaw = chunks.readsAnywhere === true ? pool.checkRawInPlace?.bind(pool) : undefined;
  }

  /** Reads and verifies chunk `hex` of `length` plain bytes and hands them to `use`. */
  async use<T>(hex: string, length: number, use: (plain: Uint8Array) => Promise<T>): Promise<T> {
    const chunk = await this.borrow(hex, length);
    try {
      return await use(chunk.plain);
    } finally {
      chunk.release();
    }
  }

  /**
   * Reads and verifies chunk `hex` into a pooled buffer that stays the caller's until `release`
   * (the export's cache keeps chunks this way: no copy, no new buffer per chunk).
   */
  async borrow(hex: string, length: number): Promise<BorrowedChunk> {
    const blob = this.blobs.take();
    const checkRaw = this.checkRaw;
    const blobOffset = checkRaw ? alignedOffset(blob) + DIRECT_ALIGN - BLOB_HEADER_SIZE : alignedOffset(blob);
    let blobLength: number;
    try {
      blobLength = await this.io.add(() => this.chunks.readInto(hex, blob, blobOffset));
    } catch (err) {
      this.blobs.give(blob);
      throw err;
    }
    const src = { blob, blobOffset, blobLength };
    if (checkRaw && blobEncoding(new Uint8Array(blob, blobOffset, blobLength)) === 'raw') {
      // the payload starts on the boundary: checked where it lies, it is the chunk
      const back = await checkRaw(src, hex, length);
      return { plain: new Uint8Array(back, blobOffset + BLOB_HEADER_SIZE, length), release: once(() => this.blobs.give(back)) };
    }
    return this.decode(src, hex, length);
  }

  /** Any blob: decoded (and checked) into a plain buffer, the blob's buffer back to its pool. */
  private async decode(src: { blob: ArrayBuffer; blobOffset: number; blobLength: number }, hex: string, length: number): Promise<BorrowedChunk> {
    const out = this.plains.take();
    const offset = alignedOffset(out);
    const decoded = await this.pool.decode(src, hex, length, out, offset);
    this.blobs.give(decoded.blob);
    return { plain: new Uint8Array(decoded.out, offset, length), release: once(() => this.plains.give(decoded.out)) };
  }
}

/** `give` run at the first call only. */
function once(give: () => void): () => void {
  let given = false;
  return () => {
    if (given) return;
    given = true;
    give();
  };
}

/** A verified chunk in a pooled buffer: the caller gives it back with `release` (once; later calls do nothing). */
export interface BorrowedChunk {
  plain: Uint8Array;
  release: () => void;
}

/**
 * Chunks in flight for reading `source` with `pool`: two per worker and two more (a disk's reads are
 * quick), or the source's own `readsInFlight` when that is more (a remote node's round trips).
 */
export function readWindow(source: ChunkSource, pool: ChunkCodec): number {
  return Math.max(pool.size * 2 + 2, source.readsInFlight ?? 0);
}

/** The queue reads of `source` go through: `io` (shared with the writes) for a disk, one of its own for a remote source. */
export function readQueue(source: ChunkSource, io: PQueue): PQueue {
  return source.readsInFlight === undefined ? io : new PQueue({ concurrency: source.readsInFlight });
}

export type ReadTrouble = 'damaged' | 'missing' | 'unreadable';

/** Codes that say the bytes read are wrong (as opposed to: could not be read). */
const DAMAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['CHUNK_CORRUPT', 'INDEX_CORRUPT', 'MANIFEST_CORRUPT', 'DIGEST_MISMATCH']);

/** What a read error says about the data: damaged, missing, or nothing (unreadable). */
export function readTrouble(err: unknown): ReadTrouble {
  if (isColdvaultError(err, 'CHUNK_MISSING')) return 'missing';
  return err instanceof ColdvaultError && DAMAGE_CODES.has(err.code) ? 'damaged' : 'unreadable';
}
