/**
 * The export's bounded cache of verified plain chunks, shared by its disks and connections: at most
 * `maxChunks` chunks (4 MiB each) held, least recently used first out. A chunk asked for while it is
 * being read is read once: the second reader waits for the first. A read that failed is not kept,
 * so the next request tries again (a flaky disk) and fails again (a damaged chunk: never wrong data).
 */
export class ChunkCache {
  private readonly entries = new Map<string, Promise<Buffer>>();

  constructor(private readonly maxChunks: number) {}

  get(key: string, load: () => Promise<Buffer>): Promise<Buffer> {
    const found = this.entries.get(key);
    if (found) {
      this.entries.delete(key); // most recently used: to the end of the order
      this.entries.set(key, found);
      return found;
    }
    const loading = load();
    this.entries.set(key, loading);
    loading.catch(() => {
      if (this.entries.get(key) === loading) this.entries.delete(key);
    });
    this.evict();
    return loading;
  }

  get size(): number {
    return this.entries.size;
  }

  private evict(): void {
    for (const key of this.entries.keys()) {
      if (this.entries.size <= this.maxChunks) return;
      this.entries.delete(key);
    }
  }
}
