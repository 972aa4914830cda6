/**
 * Fetching the chunks a version needs and the local store lacks: several requests in flight (the
 * client's bound, so the link is the limit), each blob read into a pooled buffer and inserted with
 * ChunkStore.insertReceived, which stores it only when it decodes to bytes that hash to its name
 * (nothing a node sends is trusted; a damaged or forged blob is CHUNK_CORRUPT naming the node). The
 * check runs in the worker pool (the buffer travels there and back; the one that comes back is pooled).
 * The first failure stops the others from starting new fetches; all are settled before it is thrown.
 */
import { alignedOffset, ColdvaultError, isColdvaultError } from '../../core/index.js';
import type { Datastore } from '../../datastore/index.js';
import type { RemoteStore } from '../../targets/index.js';
import { blobBufferPool, type BufferPool } from '../buffers.js';
import type { WorkerPool } from '../worker-pool.js';

export interface ChunkCounters {
  /** chunks fetched from the node and stored here */
  fetched: number;
  /** their blob bytes (as stored, compressed where that helped) */
  fetchedBytes: number;
  /** chunks of the pulled versions the store already had (touched, not fetched) */
  present: number;
}

export function newChunkCounters(): ChunkCounters {
  return { fetched: 0, fetchedBytes: 0, present: 0 };
}

export interface FetchContext {
  remote: RemoteStore;
  store: Datastore;
  /** checks each fetched blob off this thread */
  pool: WorkerPool;
  counters: ChunkCounters;
  /** NO_SPACE before the store's disk fills up (pipeline/space.ts spaceGuard) */
  guard: (bytes: number) => Promise<void>;
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
  const workers = Math.min(ctx.remote.maxInFlight, hexes.length);
  const results = await Promise.allSettled(Array.from({ length: workers }, worker));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}

async function fetchOne(ctx: FetchContext, hex: string, blobs: BufferPool): Promise<void> {
  if (ctx.signal?.aborted) throw new ColdvaultError('ABORTED', `the sync was aborted before chunk ${hex} was fetched`);
  let buf = blobs.take();
  try {
    const offset = alignedOffset(buf);
    const length = await ctx.remote.readChunkInto(hex, buf, offset);
    await ctx.guard(length);
    const stored = await insertChecked(ctx, hex, new Uint8Array(buf, offset, length));
    buf = stored.buffer as ArrayBuffer; // the same memory, back from the worker (a refused one is dropped: the pool makes another)
    ctx.counters.fetched++;
    ctx.counters.fetchedBytes += length;
  } finally {
    blobs.give(buf);
  }
}

async function insertChecked(ctx: FetchContext, hex: string, blob: Uint8Array): Promise<Uint8Array> {
  try {
    return await ctx.store.chunks.insertReceived(hex, blob, (h, b) => ctx.pool.checkReceived(b, h, true));
  } catch (err) {
    if (!isColdvaultError(err, 'CHUNK_FORGED')) throw err;
    const where = `datastore '${ctx.remote.store}' on node ${ctx.remote.node}`;
    throw new ColdvaultError('CHUNK_CORRUPT', `chunk ${hex} from ${where} is corrupt (${err.message}); run 'coldvault verify' on that node`, { cause: err });
  }
}
