/**
 * The chunk half of a push (remote-target.ts): ChunkSink over one open upload on another node.
 * - `prime` asks, in batches of 4096, about the chunks of the guest's newest version on that node
 *   (as PBS starts from the previous snapshot's index): the node touches those it has, and an
 *   unchanged nightly then needs no question per chunk, only one request per 4096 chunks.
 * - `touch` answers from what is known to be there in this upload (touched on the node after the
 *   upload registered as a writer, so its gc keeps it: server/uploads/index.ts); anything else is
 *   asked in coalesced `known` batches (up to 256 digests, or what came in within 2 ms).
 * - `insert` sends the blob (the node checks it hashes to its name); `missing` asks the node afresh
 *   (the last look before finish); `syncDirs` is nothing here: the node syncs before it publishes.
 */
import type { RemoteUpload } from '../targets/index.js';
import type { ChunkSink } from './backup-target.js';

const BATCH = 256;
const BATCH_WAIT_MS = 2;

interface Waiting {
  resolve: (present: boolean) => void;
  reject: (err: unknown) => void;
  promise: Promise<boolean>;
}

export class RemoteChunkSink implements ChunkSink {
  /** chunks known to be in the node's store, touched there during this upload */
  private readonly present = new Set<string>();
  private waiting = new Map<string, Waiting>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly upload: RemoteUpload) {}

  /** Asks about `hexes` at once (the previous version's chunks); answers how many are there. */
  async prime(hexes: Iterable<string>): Promise<number> {
    const unique = [...new Set(hexes)];
    const missing = new Set(await this.upload.known(unique));
    for (const hex of unique) if (!missing.has(hex)) this.present.add(hex);
    return unique.length - missing.size;
  }

  touch(hex: string): Promise<boolean> {
    if (this.present.has(hex)) return Promise.resolve(true);
    const known = this.waiting.get(hex);
    if (known) return known.promise;
    const entry = newWaiting();
    this.waiting.set(hex, entry);
    if (this.waiting.size >= BATCH) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_WAIT_MS);
    return entry.promise;
  }

  async touchOrMissing(hexes: Iterable<string>): Promise<string[]> {
    const ask = [...new Set(hexes)].filter((hex) => !this.present.has(hex));
    if (ask.length === 0) return [];
    const missing = await this.upload.known(ask);
    this.learn(ask, missing);
    return missing;
  }

  async missing(hexes: Iterable<string>): Promise<string[]> {
    const ask = [...new Set(hexes)];
    if (ask.length === 0) return [];
    const missing = await this.upload.known(ask);
    this.learn(ask, missing);
    return missing;
  }

  async insert(hex: string, blob: Uint8Array): Promise<void> {
    await this.upload.putChunk(hex, blob);
    this.present.add(hex);
  }

  async syncDirs(): Promise<void> {
    // the node makes the chunks durable before it publishes (finish)
  }

  private learn(asked: readonly string[], missing: readonly string[]): void {
    const gone = new Set(missing);
    for (const hex of asked) {
      if (gone.has(hex)) this.present.delete(hex);
      else this.present.add(hex);
    }
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting;
    this.waiting = new Map();
    const hexes = [...batch.keys()];
    this.upload.known(hexes).then(
      (missing) => {
        this.learn(hexes, missing);
        const gone = new Set(missing);
        for (const [hex, entry] of batch) entry.resolve(!gone.has(hex));
      },
      (err: unknown) => {
        for (const entry of batch.values()) entry.reject(err);
      },
    );
  }
}

function newWaiting(): Waiting {
  let resolve!: (present: boolean) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<boolean>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { resolve, reject, promise };
}
