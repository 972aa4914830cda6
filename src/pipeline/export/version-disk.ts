/**
 * One disk of a version, readable at any offset: the chunks a read touches are fetched on demand from
 * the version source, verified in the worker pool (CRC, decode, SHA-256 against the chunk's name,
 * with the key for an encrypted version: ChunkReader) before a byte is served, and kept in the
 * export's ChunkCache (a read holds its chunks there until the caller has sent them: `release`). An all-zero chunk (a null digest in the index) is a hole: nothing is read.
 * A chunk that is damaged, missing or unreadable fails the read (the export answers EIO) and is
 * reported once through `onTrouble`.
 */
import { describeError } from '../../core/index.js';
import type { FixedIndex } from '../../format/index.js';
import type { ChunkReader } from '../chunk-reader.js';
import type { CachedChunk, ChunkCache } from './chunk-cache.js';

/** A piece of a read: verified bytes, or a run of zeros (an all-zero chunk, not stored). */
export type Piece = { offset: number; data: Buffer } | { offset: number; hole: number };

/** The pieces of a read; their bytes are the cache's until `release` (call it once they are sent). */
export interface DiskRead {
  pieces: Piece[];
  release: () => void;
}

export interface DiskTrouble {
  disk: string;
  digest: string;
  error: unknown;
}

export class VersionDisk {
  private readonly reported = new Set<string>();

  constructor(
    /** the export's name: the disk's config key (scsi0, virtio0, ...) */
    readonly name: string,
    readonly size: number,
    private readonly index: FixedIndex,
    private readonly reader: ChunkReader,
    private readonly cache: ChunkCache,
    private readonly onTrouble: (t: DiskTrouble) => void,
  ) {}

  /** The pieces of [offset, offset + length), in order; the caller checks the range against `size`. */
  async read(offset: number, length: number): Promise<DiskRead> {
    const pending: Array<Promise<Held>> = [];
    const cs = this.index.chunkSize;
    for (let at = offset; at < offset + length; ) {
      const i = Math.floor(at / cs);
      const start = i * cs;
      const end = Math.min(start + cs, this.size, offset + length);
      pending.push(this.piece(i, at - start, end - start, at));
      at = end;
    }
    const settled = await Promise.allSettled(pending);
    const held = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const release = (): void => {
      for (const h of held) h.release();
    };
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) {
      release();
      throw failed.reason;
    }
    return { pieces: mergeHoles(held.map((h) => h.piece)), release };
  }

  /** The extents of [offset, offset + length): runs of stored data and of all-zero chunks (holes), merged. */
  extents(offset: number, length: number): Array<{ length: number; zero: boolean }> {
    const out: Array<{ length: number; zero: boolean }> = [];
    const cs = this.index.chunkSize;
    for (let at = offset; at < offset + length; ) {
      const i = Math.floor(at / cs);
      const end = Math.min((i + 1) * cs, this.size, offset + length);
      const zero = !this.index.digests[i];
      const last = out.at(-1);
      if (last && last.zero === zero) last.length += end - at;
      else out.push({ length: end - at, zero });
      at = end;
    }
    return out;
  }

  private async piece(i: number, from: number, to: number, at: number): Promise<Held> {
    const digest = this.index.digests[i];
    if (!digest) return { piece: { offset: at, hole: to - from }, release: () => undefined };
    const chunk = await this.chunk(i, digest.toString('hex'));
    const data = Buffer.from(chunk.data.buffer, chunk.data.byteOffset + from, to - from);
    return { piece: { offset: at, data }, release: chunk.release };
  }

  private chunk(i: number, hex: string): Promise<CachedChunk> {
    const length = Math.min(this.index.chunkSize, this.size - i * this.index.chunkSize);
    return this.cache.get(`${this.name}:${i}`, async () => {
      try {
        return await this.reader.borrow(hex, length);
      } catch (err) {
        if (!this.reported.has(hex)) {
          this.reported.add(hex);
          this.onTrouble({ disk: this.name, digest: hex, error: err });
        }
        throw new Error(`chunk ${hex} of disk ${this.name}: ${describeError(err)}`, { cause: err });
      }
    });
  }
}

/** A piece and what gives its chunk back to the cache. */
interface Held {
  piece: Piece;
  release: () => void;
}

function mergeHoles(pieces: Piece[]): Piece[] {
  const out: Piece[] = [];
  for (const p of pieces) {
    const last = out.at(-1);
    if (last && 'hole' in last && 'hole' in p) last.hole += p.hole;
    else out.push({ ...p });
  }
  return out;
}
