/**
 * Backs up one disk image: read -> zero test -> SHA-256 (worker) -> dedup (touch) -> zstd (worker)
 * -> durable insert, in fixed chunks, with at most `window` chunks in flight. Returns the ordered
 * digests for the fixed index and the counters for the manifest and the log.
 * Chunks a base provides (changed-read.ts: unchanged since the base snapshot) are not read: their
 * digest from the base version's index is touched in the store (and so kept from gc, and checked again
 * before publishing, backup-reuse.ts); one the store no longer holds is read like a changed chunk.
 * Those touches come first, in batches (they hold no buffer, so they need no place in the window): an
 * unchanged nightly costs one touch per chunk, not a read pipeline's bookkeeping per chunk.
 */
import { open, type FileHandle } from 'node:fs/promises';
import PQueue from 'p-queue';
import { alignedOffset, ColdvaultError, ioError } from '../core/index.js';
import { CHUNK_SIZE, chunkCountFor, chunkLength, DiskDigest, zeroChunkDigest } from '../format/index.js';
import type { ChunkSink } from './backup-target.js';
import { BufferPool, isAllZero } from './buffers.js';
import { Tasks, Window } from './limits.js';
import type { ChunkCodec } from './worker-pool.js';
import { dataChunkRanges } from './sparse.js';

export interface DiskCounters {
  /** bytes done (read, holes, and taken from a base): the progress */
  readBytes: number;
  /** bytes actually read from the file (holes and chunks taken from a base are not) */
  fileReadBytes: number;
  /** bytes and chunks taken from a base without reading them; base chunks gone from the store (read) */
  baseBytes: number;
  baseChunks: number;
  baseGoneChunks: number;
  zeroBytes: number;
  zeroChunks: number;
  dedupBytes: number;
  newBytes: number;
  storedBytes: number;
  newChunks: number;
}

export interface BackupDiskResult extends DiskCounters {
  digests: Array<Buffer | null>;
  sha256: string;
}

export interface BackupDiskContext {
  chunks: ChunkSink;
  pool: ChunkCodec;
  io: PQueue;
  buffers: BufferPool;
  /** buffers for encoded blobs (maxBlobSize(CHUNK_SIZE) each) */
  blobBuffers: BufferPool;
  /** bounds the encoded blobs waiting to be written (and so the blob buffers) */
  writeSlots: Window;
  zstdLevel: number;
  /** chunks inserted or confirmed during this run: dedup within the run without a syscall */
  seen: Map<string, Promise<void>>;
  /** chunks this run found in the store and touched: checked again before the version is published (backup-reuse.ts) */
  reused: Set<string>;
  signal?: AbortSignal;
  onChunk?: (counters: DiskCounters) => void;
  /** called before each new chunk is written, with its size; throws to stop (space guard) */
  beforeWrite?: (blobBytes: number) => Promise<void>;
}

export function newCounters(): DiskCounters {
  return {
    readBytes: 0,
    fileReadBytes: 0,
    baseBytes: 0,
    baseChunks: 0,
    baseGoneChunks: 0,
    zeroBytes: 0,
    zeroChunks: 0,
    dedupBytes: 0,
    newBytes: 0,
    storedBytes: 0,
    newChunks: 0,
  };
}

/** Backs up the image at `path`; the chunks of `fromBase` (index -> digest, null: zero) are taken from a base unread. */
export async function backupDisk(
  path: string,
  size: number,
  ctx: BackupDiskContext,
  fromBase: ReadonlyMap<number, Buffer | null> = new Map(),
): Promise<BackupDiskResult> {
  const count = chunkCountFor(size, CHUNK_SIZE);
  const digests: Array<Buffer | null> = new Array<Buffer | null>(count).fill(null);
  const counters = newCounters();
  const window = new Window(ctx.pool.size * 2 + 2);
  const reads = new PQueue({ concurrency: 2 });
  const tasks = new Tasks();
  const gone = await touchBaseChunks(fromBase, ctx);
  const file = await openImage(path);
  try {
    let next = 0;
    for (const [first, end] of dataChunkRanges(file.fd, size, CHUNK_SIZE, count)) {
      countHoles(counters, size, next, first);
      for (let i = first; i < end; i++) {
        await window.acquire();
        tasks.check();
        if (ctx.signal?.aborted) throw new ColdvaultError('ABORTED', `backup of '${path}' aborted`);
        const base = fromBase.get(i);
        if (base !== undefined && !gone.has(i)) {
          takeFromBase(i, size, base, digests, counters);
          window.release();
          ctx.onChunk?.(counters);
          continue;
        }
        if (base !== undefined) counters.baseGoneChunks++;
        const slot = once(() => window.release());
        const src = { file, path, size, reads };
        tasks.start(() =>
          backupChunk(src, i, digests, counters, ctx, slot).finally(() => {
            slot();
            ctx.onChunk?.(counters);
          }),
        );
      }
      next = end;
    }
    countHoles(counters, size, next, count);
  } finally {
    await tasks.settle().finally(() => file.close());
  }
  return { ...counters, digests, sha256: diskDigest(digests, size) };
}

/** Chunks [from, to) lie in a hole: all zero, not read. */
function countHoles(counters: DiskCounters, size: number, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const length = chunkLength(size, i);
    counters.readBytes += length;
    counters.zeroBytes += length;
    counters.zeroChunks++;
  }
}

interface Source {
  file: FileHandle;
  path: string;
  size: number;
  /** bounds concurrent reads (they run on libuv's thread pool, so two overlap copy and wait) */
  reads: PQueue;
}

async function backupChunk(
  src: Source,
  i: number,
  digests: Array<Buffer | null>,
  counters: DiskCounters,
  ctx: BackupDiskContext,
  releaseSlot: () => void,
): Promise<void> {
  const length = chunkLength(src.size, i);
  const buf = ctx.buffers.take();
  try {
    await src.reads.add(() => readExactly(src.file, buf, length, i * CHUNK_SIZE, src.path));
  } catch (err) {
    ctx.buffers.give(buf);
    throw err;
  }
  counters.readBytes += length;
  counters.fileReadBytes += length;
  if (isAllZero(buf, length)) {
    counters.zeroBytes += length;
    counters.zeroChunks++;
    ctx.buffers.give(buf);
    return;
  }
  await storeChunk(buf, length, i, digests, counters, ctx, releaseSlot);
}

/**
 * Touches, in batches, the chunks of `fromBase` (unchanged since the base) that have a digest; answers
 * the chunk indexes whose digest is gone from the store (gc, verify's quarantine): those are read like
 * changed chunks. The others are present and reused (checked again before publishing).
 */
async function touchBaseChunks(fromBase: ReadonlyMap<number, Buffer | null>, ctx: BackupDiskContext): Promise<Set<number>> {
  const byHex = new Map<string, number[]>();
  for (const [i, digest] of fromBase) {
    if (digest === null) continue;
    const hex = digest.toString('hex');
    const indexes = byHex.get(hex);
    if (indexes) indexes.push(i);
    else byHex.set(hex, [i]);
  }
  const gone = new Set<number>();
  for (const hex of await touchAll(byHex.keys(), ctx)) for (const i of byHex.get(hex) ?? []) gone.add(i);
  return gone;
}

/** Chunk `i` is taken from the base unread (a zero chunk there, or its digest, present and touched). */
function takeFromBase(i: number, size: number, digest: Buffer | null, digests: Array<Buffer | null>, counters: DiskCounters): void {
  const length = chunkLength(size, i);
  countBase(counters, length);
  digests[i] = digest;
  if (digest === null) {
    counters.zeroBytes += length;
    counters.zeroChunks++;
  } else counters.dedupBytes += length;
}

/** Touches the chunks (those this run inserts or confirms already count); answers the ones gone from the store. */
async function touchAll(hexes: Iterable<string>, ctx: BackupDiskContext): Promise<string[]> {
  const fresh: string[] = [];
  for (const hex of hexes) {
    const pending = ctx.seen.get(hex);
    if (pending) await pending;
    else fresh.push(hex);
  }
  const missing = await ctx.chunks.touchOrMissing(fresh);
  const gone = new Set(missing);
  for (const hex of fresh) {
    if (gone.has(hex)) continue;
    ctx.reused.add(hex);
    ctx.seen.set(hex, Promise.resolve());
  }
  return missing;
}

function countBase(counters: DiskCounters, length: number): void {
  counters.readBytes += length;
  counters.baseBytes += length;
  counters.baseChunks++;
}

function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (!done) f();
    done = true;
  };
}

/**
 * Hash, dedup, encode, write. The plain buffer and the read window's slot are given back as soon as
 * the chunk is encoded, so reading and hashing go on while earlier chunks wait for their fsync; the
 * blobs waiting to be written are bounded by `ctx.writeSlots`.
 */
async function storeChunk(
  buf0: ArrayBuffer,
  length: number,
  i: number,
  digests: Array<Buffer | null>,
  counters: DiskCounters,
  ctx: BackupDiskContext,
  releaseSlot: () => void,
): Promise<void> {
  let buf: ArrayBuffer | undefined = buf0;
  try {
    const hashed = await ctx.pool.digest(buf, length);
    buf = hashed.buf;
    digests[i] = Buffer.from(hashed.hex, 'hex');
    const pending = ctx.seen.get(hashed.hex);
    if (pending) {
      await pending;
      counters.dedupBytes += length;
      return;
    }
    const marker = deferred();
    ctx.seen.set(hashed.hex, marker.promise);
    try {
      if (await ctx.chunks.touch(hashed.hex)) {
        counters.dedupBytes += length;
        ctx.reused.add(hashed.hex);
      } else {
        await ctx.writeSlots.acquire();
        try {
          const plain = buf;
          buf = undefined;
          const blobLength = await encodeAndWrite(hashed.hex, plain, length, ctx, releaseSlot);
          counters.newBytes += length;
          counters.storedBytes += blobLength;
          counters.newChunks++;
        } finally {
          ctx.writeSlots.release();
        }
      }
      marker.resolve();
    } catch (err) {
      ctx.seen.delete(hashed.hex);
      marker.reject(err);
      throw err;
    }
  } finally {
    if (buf) ctx.buffers.give(buf);
  }
}

/**
 * Reads chunk `i` of the image again and writes it to the store; it must still hash to `hex` (the
 * source is not allowed to change during a backup). Used when a reused chunk vanished (backup-reuse.ts).
 */
export async function rewriteChunk(path: string, size: number, i: number, hex: string, ctx: BackupDiskContext): Promise<void> {
  const length = chunkLength(size, i);
  const file = await openImage(path);
  let buf: ArrayBuffer | undefined = ctx.buffers.take();
  try {
    await readExactly(file, buf, length, i * CHUNK_SIZE, path);
    const hashed = await ctx.pool.digest(buf, length);
    buf = hashed.buf;
    if (hashed.hex !== hex) {
      throw new ColdvaultError('DIGEST_MISMATCH', `disk image '${path}' changed during the backup: chunk ${i} hashes to ${hashed.hex} now, ${hex} before`);
    }
    const plain = buf;
    buf = undefined;
    await encodeAndWrite(hex, plain, length, ctx);
  } finally {
    if (buf) ctx.buffers.give(buf);
    await file.close();
  }
}

/**
 * Encodes the plain chunk (the buffer goes back to its pool as soon as it is encoded, then `encoded`
 * is called: the backup's read window moves on while the blob waits for its write) and writes the
 * blob durably; returns the blob's length.
 */
async function encodeAndWrite(hex: string, plain: ArrayBuffer, length: number, ctx: BackupDiskContext, encoded?: () => void): Promise<number> {
  const out = ctx.blobBuffers.take();
  const outOffset = alignedOffset(out);
  const blob = await ctx.pool.encode(plain, length, ctx.zstdLevel, out, outOffset, hex);
  ctx.buffers.give(blob.buf);
  encoded?.();
  await writeBlob(hex, blob.out, outOffset, blob.blobLength, ctx);
  return blob.blobLength;
}

async function writeBlob(hex: string, out: ArrayBuffer, offset: number, blobLength: number, ctx: BackupDiskContext): Promise<void> {
  try {
    await ctx.beforeWrite?.(blobLength);
    await ctx.io.add(() => ctx.chunks.insert(hex, new Uint8Array(out, offset, blobLength)));
  } finally {
    ctx.blobBuffers.give(out);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

function diskDigest(digests: Array<Buffer | null>, size: number): string {
  const d = new DiskDigest();
  digests.forEach((digest, i) => d.add(digest ?? zeroChunkDigest(chunkLength(size, i))));
  return d.hex();
}

async function openImage(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (err) {
    throw ioError(`opening disk image '${path}'`, err);
  }
}

async function readExactly(file: FileHandle, buf: ArrayBuffer, length: number, position: number, path: string): Promise<void> {
  const view = Buffer.from(buf, 0, length);
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      ({ bytesRead: n } = await file.read(view, done, length - done, position + done));
    } catch (err) {
      throw ioError(`reading disk image '${path}' at offset ${position + done}`, err);
    }
    if (n === 0) throw new ColdvaultError('IO', `disk image '${path}' ended at ${position + done} bytes while being read: did it shrink?`);
    done += n;
  }
}
