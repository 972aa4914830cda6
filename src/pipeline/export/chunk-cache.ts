/**
 * The export's bounded cache of verified plain chunks, shared by its disks and connections: at most
 * `maxChunks` chunks (4 MiB each) listed, least recently used first out. A chunk asked for while it is
 * being read is read once: the second reader waits for the first. A read that failed is not kept,
 * so the next request tries again (a flaky disk) and fails again (a damaged chunk: never wrong data).
 *
 * The chunks stay in the chunk reader's pooled buffers (no copy, no new buffer per chunk: at the
 * export's rates a fresh 4 MiB buffer per chunk cost more in garbage collection than the SHA-256).
 * So each user holds its chunk until its bytes are on the socket (`release`); an evicted chunk whose
 * buffer someone still holds leaves the list at once and goes back to the pool when the last
 * holder is done. Buffers in use: at most `maxChunks` plus those the requests in flight hold.
 */
import type { BorrowedChunk } from '../chunk-reader.js';

/** A cached chunk lent to one user until `release` (once; later calls do nothing). */
export interface CachedChunk {
  data: Uint8Array;
  release: () => void;
}

interface Entry {
  loading: Promise<BorrowedChunk>;
  users: number;
  evicted: boolean;
}

export class ChunkCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxChunks: number) {}

  async get(key: string, load: () => Promise<BorrowedChunk>): Promise<CachedChunk> {
    const entry = this.entry(key, load);
    entry.users++;
    let chunk: BorrowedChunk;
    try {
      chunk = await entry.loading;
    } catch (err) {
      entry.users--;
      throw err;
    }
    let done = false;
    const release = (): void => {
      if (done) return;
      done = true;
      entry.users--;
      if (entry.evicted && entry.users === 0) chunk.release();
    };
    return { data: chunk.plain, release };
  }

  get size(): number {
    return this.entries.size;
  }

  /** The entry of `key` (most recently used now), loading it when it is not listed. */
  private entry(key: string, load: () => Promise<BorrowedChunk>): Entry {
    const found = this.entries.get(key);
    if (found) {
      this.entries.delete(key); // most recently used: to the end of the order
      this.entries.set(key, found);
      return found;
    }
    const entry: Entry = { loading: load(), users: 0, evicted: false };
    this.entries.set(key, entry);
    entry.loading.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    this.evict();
    return entry;
  }

  private evict(): void {
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.maxChunks) return;
      this.entries.delete(key);
      entry.evicted = true;
      if (entry.users === 0) entry.loading.then((c) => c.release()).catch(() => undefined);
    }
  }
}
