/**
 * Object Lock for a sync into an S3 datastore with `objectLockDays` (datastore/s3/s3-retention.ts):
 * every chunk a pulled version names must be retained at least as long as the version's files. What
 * is known of each chunk's retention, without a request per chunk: the chunks this run PUT (their
 * date is the one they were written with), those it lengthened, and those of a guest's newest
 * version here, whose manifest's `chunks-until` is the earliest date any of them is kept to. A chunk
 * the version reuses that is not known to last as long is lengthened (one request each, a few in
 * flight); the manifest then gets the earliest date of its chunks as its own `chunks-until`.
 */
import PQueue from 'p-queue';
import type { TaskLog } from '../../core/index.js';
import { CHUNKS_UNTIL_META, type RetentionPlan, type S3Datastore } from '../../datastore/index.js';

export class ChunkRetention {
  /** ms since the epoch until which each chunk is known to be retained */
  private readonly until = new Map<string, number>();

  constructor(private readonly store: S3Datastore) {}

  /** `hexes` are retained at least until `date` (a chunk keeps the later of what is known). */
  note(hexes: Iterable<string>, date: Date): void {
    const ms = date.getTime();
    for (const h of hexes) if ((this.until.get(h) ?? 0) < ms) this.until.set(h, ms);
  }

  /** Lengthens what must last longer for a version of `plan`; the manifest's metadata (its `chunks-until`). */
  async keep(digests: readonly string[], plan: RetentionPlan, log: TaskLog): Promise<Record<string, string>> {
    const short = digests.filter((h) => (this.until.get(h) ?? 0) < plan.versionUntil.getTime());
    const queue = new PQueue({ concurrency: 8 });
    const { client, keys } = this.store;
    await Promise.all(short.map((hex) => queue.add(() => client.setRetention(keys.chunk(hex), { mode: 'COMPLIANCE', until: plan.chunkUntil }))));
    this.note(short, plan.chunkUntil);
    if (short.length > 0) log.info(`kept ${short.length} reused chunk(s) under Object Lock until ${plan.chunkUntil.toISOString()}`);
    let earliest = plan.chunkUntil.getTime();
    for (const h of digests) earliest = Math.min(earliest, this.until.get(h) ?? earliest);
    return { [CHUNKS_UNTIL_META]: new Date(earliest).toISOString() };
  }
}
