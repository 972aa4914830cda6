/**
 * Restores one disk from its fixed index into a (temp) file: zero chunks stay holes (the file is
 * sized with ftruncate and only non-zero chunks are written, so the output is sparse); every chunk is
 * read, CRC- and SHA-256-checked in a worker, and written at its offset (O_DIRECT where the filesystem
 * allows it, see direct-io.ts), at most `window` in flight.
 */
import PQueue from 'p-queue';
import { ColdvaultError, ioError } from '../core/index.js';
import { chunkLength, DiskDigest, zeroChunkDigest, type FixedIndex } from '../format/index.js';
import { Tasks, Window } from './limits.js';
import type { ChunkReader } from './chunk-reader.js';
import { DiskImageWriter } from './direct-io.js';

export interface RestoreDiskContext {
  reader: ChunkReader;
  /** window size: chunks in flight */
  window: number;
  io: PQueue;
  /** false: write through the page cache even where O_DIRECT works (default true) */
  direct?: boolean;
  signal?: AbortSignal;
  onChunk?: (counters: { readBytes: number; writtenBytes: number; zeroBytes: number }) => void;
}

/** Checks an index against its manifest entry: the disk size, and the digest chain's disk SHA-256. */
export function checkIndexDigest(index: FixedIndex, disk: { size: number; sha256: string; chunkSize?: number }, what: string): void {
  if (index.size !== disk.size) {
    throw new ColdvaultError('INDEX_CORRUPT', `${what}: the index describes ${index.size} bytes, the manifest ${disk.size}`);
  }
  if (disk.chunkSize !== undefined && index.chunkSize !== disk.chunkSize) {
    throw new ColdvaultError('INDEX_CORRUPT', `${what}: the index has chunks of ${index.chunkSize} bytes, the manifest ${disk.chunkSize}`);
  }
  const expected = disk.sha256;
  const d = new DiskDigest();
  index.digests.forEach((digest, i) => d.add(digest ?? zeroChunkDigest(chunkLength(index.size, i, index.chunkSize))));
  if (d.hex() !== expected) {
    throw new ColdvaultError('DIGEST_MISMATCH', `${what}: the index does not match the disk SHA-256 in the manifest`);
  }
}

export async function restoreDisk(index: FixedIndex, target: string, ctx: RestoreDiskContext): Promise<void> {
  const file = await DiskImageWriter.create(target, { direct: ctx.direct });
  const counters = { readBytes: 0, writtenBytes: 0, zeroBytes: 0 };
  const window = new Window(ctx.window);
  const tasks = new Tasks();
  const flusher = new Flusher(file, target);
  try {
    await file.truncate(index.size);
    for (let i = 0; i < index.digests.length; i++) {
      const digest = index.digests[i];
      const length = chunkLength(index.size, i, index.chunkSize);
      if (!digest) {
        counters.readBytes += length;
        counters.zeroBytes += length;
        continue;
      }
      await window.acquire();
      tasks.check();
      if (ctx.signal?.aborted) throw new ColdvaultError('ABORTED', `restore to '${target}' aborted`);
      const hex = digest.toString('hex');
      const offset = i * index.chunkSize;
      tasks.start(async () => {
        try {
          await ctx.reader.use(hex, length, (plain) => ctx.io.add(() => file.write(plain, offset)));
          counters.readBytes += length;
          counters.writtenBytes += length;
          flusher.wrote(length);
          ctx.onChunk?.(counters);
        } finally {
          window.release();
        }
      });
    }
    await tasks.settle();
    await flusher.finish();
  } finally {
    await tasks.settle().catch(() => undefined);
    await file.close();
  }
}

/**
 * Writeback while restoring: every FLUSH_EVERY bytes a datasync starts in the background (one at a
 * time), so the disk writes while the workers decode and the last sync finds little left to do. The
 * restore is durable when it reports success, and costs about max(CPU, disk), not CPU + disk.
 */
const FLUSH_EVERY = 256 * 1024 * 1024;

class Flusher {
  private since = 0;
  private pending: Promise<void> | undefined;
  private failure: unknown;

  constructor(
    private readonly file: DiskImageWriter,
    private readonly target: string,
  ) {}

  wrote(bytes: number): void {
    this.since += bytes;
    if (this.since < FLUSH_EVERY || this.pending) return;
    this.since = 0;
    this.pending = this.file
      .datasync()
      .catch((err: unknown) => {
        this.failure = err;
      })
      .finally(() => {
        this.pending = undefined;
      });
  }

  async finish(): Promise<void> {
    await this.pending;
    if (this.failure === undefined)
      await this.file.sync().catch((err: unknown) => {
        this.failure = err;
      });
    if (this.failure !== undefined) throw ioError(`syncing '${this.target}'`, this.failure);
  }
}
