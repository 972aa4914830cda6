/**
 * Fetching the chunks a version needs and the target lacks: several reads in flight (the source's
 * bound, or the target's when its writes wait longer: a bucket's PUTs), each blob read into a pooled
 * buffer and handed to the target (GuestSink.storeChunk), which stores it only when it decodes to
 * bytes that hash to its name (nothing a source gives is trusted; a damaged or forged blob is
 * CHUNK_CORRUPT naming the source). The check runs in the worker pool (the buffer travels there and
 * back; the one that comes back is pooled). The first failure stops the others from starting new
 * fetches; all are settled before it is thrown.
 */
import { alignedOffset, ColdvaultError, isColdvaultError } from '../../core/index.js';
import { blobBufferPool, type BufferPool } from '../buffers.js';
import type { WorkerPool } from '../worker-pool.js';
import type { PullSource } from './pull-source.js';
import type { GuestSink } from './sink.js';

export interface ChunkCounters {
  /** chunks fetched from the source and stored at the target */
  fetched: number;
  /** their blob bytes (as stored, compressed where that helped) */
  fetchedBytes: number;
  /** chunks of the pulled versions the target already had (touched or known, not fetched) */
  present: number;
}

export function newChunkCounters(): ChunkCounters {
  return { fetched: 0, fetchedBytes: 0, present: 0 };
}

export interface FetchContext {
  source: PullSource;
  sink: GuestSink;
  /** checks each fetched blob off this thread */
  pool: WorkerPool;
  counters: ChunkCounters;
  /** fetches in flight at most */
  inFlight: number;
  signal?: AbortSignal;
}

export async function fetchChunks(ctx: FetchContext, hexes: readonly string[]): Promise<void> {
  const blobs = blobBufferPool();
  const state = { next: 0, failed: false };
  const worker = async (): Promise<void> => {
    while (!state.failed && state.next < hexes.length) {
      const hex = hexes[state.next++] as string;
      try {
        await fetchOne(ctx, hex, blobs);
      } catch (err) {
        state.failed = true;
        throw err;
      }
    }
  };
  const workers = Math.min(ctx.inFlight, hexes.length);
  const results = await Promise.allSettled(Array.from({ length: workers }, worker));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}

async function fetchOne(ctx: FetchContext, hex: string, blobs: BufferPool): Promise<void> {
  if (ctx.signal?.aborted) throw new ColdvaultError('ABORTED', `the sync was aborted before chunk ${hex} was fetched`);
  let buf = blobs.take();
  try {
    const offset = alignedOffset(buf);
    const length = await ctx.source.reader.chunks.readInto(hex, buf, offset);
    const stored = await storeChecked(ctx, hex, new Uint8Array(buf, offset, length));
    buf = stored.buffer as ArrayBuffer; // the same memory, back from the worker (a refused one is dropped: the pool makes another)
    ctx.counters.fetched++;
    ctx.counters.fetchedBytes += length;
  } finally {
    blobs.give(buf);
  }
}

async function storeChecked(ctx: FetchContext, hex: string, blob: Uint8Array): Promise<Uint8Array> {
  try {
    return await ctx.sink.storeChunk(hex, blob, (h, b) => ctx.pool.checkReceived(b, h, true));
  } catch (err) {
    if (!isColdvaultError(err, 'CHUNK_FORGED')) throw err;
    throw new ColdvaultError('CHUNK_CORRUPT', `chunk ${hex} from ${ctx.source.where} is corrupt (${err.message}); ${ctx.source.verifyAdvice}`, {
      cause: err,
    });
  }
}
