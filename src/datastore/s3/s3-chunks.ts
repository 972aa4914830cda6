/**
 * Chunks of an S3 datastore: one object per blob at `chunks/<4 hex>/<64 hex>`, the same bytes as a
 * folder store's chunk file. A PUT that answered 200 is durable (S3's contract), so there is nothing
 * to sync. What is "there" is known without a request per chunk: the chunks of the indexes a backup
 * primed this run with (a published version's: gc cannot remove them while the backup is registered
 * as a writer, index.ts) and those this run stored. A chunk the run does not know is uploaded; if it
 * was there already, the PUT rewrites the same bytes (content-addressed: nothing changes but the
 * bytes on the wire).
 *
 * Healing (as a folder's quarantine): verify moves a damaged chunk object aside to
 * `quarantine/<hex>.<ms>` and leaves a marker `heal/<hex>` (a missing chunk gets the marker alone).
 * A backup lists the markers once when it begins a version and never takes those chunks as known, so
 * the next backup that meets the same data uploads them afresh (healing every older version that names
 * them) and then removes the marker. A version published by a backup that had primed a chunk before
 * verify moved it aside names a chunk that was damaged already: it is as damaged as the older versions,
 * and the backup after it heals them all.
 */
import { ColdvaultError } from '../../core/index.js';
import { S3Error, type S3Client } from '../../targets/index.js';
import type { S3Keys } from './s3-location.js';

export class S3ChunkStore {
  private readonly known = new Set<string>();
  /** chunks verify found damaged or missing (heal markers): never known, uploaded when met */
  private toHeal = new Set<string>();
  /** the chunks this run uploaded afresh after verify found them damaged or missing */
  readonly healed = new Set<string>();
  /** the chunks this run stored (the others it references were there: under Object Lock their retention may need lengthening) */
  readonly inserted = new Set<string>();
  /** Object Lock retention of the chunks this run stores (s3-retention.ts) */
  retention?: { mode: 'COMPLIANCE'; until: Date };

  constructor(
    private readonly client: S3Client,
    private readonly keys: S3Keys,
  ) {}

  /**
   * A new version begins: what is known to be stored is forgotten. What an earlier run (another
   * guest's, in the same process) knew was safe only while it was registered as a writer: a gc may
   * have run since (index.ts point 3), and under Object Lock a chunk's retention is only known for the
   * guest's own previous version.
   */
  beginVersion(retention: { mode: 'COMPLIANCE'; until: Date } | undefined, toHeal: ReadonlySet<string> = new Set()): void {
    this.inserted.clear();
    this.known.clear();
    this.healed.clear();
    this.toHeal = new Set(toHeal);
    this.retention = retention;
  }

  /** The chunks verify marked for healing (one listing). */
  async listToHeal(): Promise<Set<string>> {
    const found = new Set<string>();
    const prefix = this.keys.heals();
    for await (const o of this.client.list(prefix)) found.add(o.key.slice(prefix.length));
    return found;
  }

  /** What this run knows to be stored: primed, and uploaded by it (for the known-chunk cache, s3-known-cache.ts). */
  knownNow(): Iterable<string> {
    return this.known.values();
  }

  /** Adds chunks known to be stored (a published version's index); answers how many were new to the set. */
  prime(hexes: Iterable<string>): number {
    const before = this.known.size;
    for (const h of hexes) if (!this.toHeal.has(h)) this.known.add(h);
    return this.known.size - before;
  }

  touch(hex: string): Promise<boolean> {
    return Promise.resolve(this.known.has(hex));
  }

  touchOrMissing(hexes: Iterable<string>): Promise<string[]> {
    return Promise.resolve([...hexes].filter((h) => !this.known.has(h)));
  }

  missing(hexes: Iterable<string>): Promise<string[]> {
    return this.touchOrMissing(hexes);
  }

  async insert(hex: string, blob: Uint8Array): Promise<void> {
    await this.client.put(this.keys.chunk(hex), blob, { retention: this.retention });
    this.known.add(hex);
    this.inserted.add(hex);
    if (this.toHeal.delete(hex)) {
      await this.client.delete(this.keys.heal(hex));
      this.healed.add(hex);
    }
  }

  /**
   * Verify found chunk `hex` damaged: its bytes are copied to `quarantine/` and the object removed,
   * behind a heal marker (the header). Answers where the bytes went; undefined when it was gone.
   */
  async quarantine(hex: string): Promise<string | undefined> {
    let bytes: Buffer;
    try {
      bytes = await this.client.get(this.keys.chunk(hex));
    } catch (err) {
      if (!(err instanceof S3Error && err.code === 'S3_NOT_FOUND')) throw err;
      await this.markForHealing(hex);
      return undefined;
    }
    const aside = this.keys.quarantined(hex, Date.now());
    await this.client.put(aside, bytes);
    await this.markForHealing(hex);
    await this.client.delete(this.keys.chunk(hex));
    return `s3://${this.client.bucket}/${aside}`;
  }

  /** Verify found chunk `hex` missing (or moved it aside): the next backup that meets its data uploads it. */
  async markForHealing(hex: string): Promise<void> {
    await this.client.put(this.keys.heal(hex), Buffer.alloc(0));
  }

  syncDirs(): Promise<void> {
    return Promise.resolve();
  }

  /** The blob of `hex` into `buf` from `offset` on (unchecked: the caller checks CRC and digest); CHUNK_MISSING when absent. */
  async readInto(hex: string, buf: ArrayBuffer, offset = 0): Promise<number> {
    const room = new Uint8Array(buf, offset, buf.byteLength - offset);
    let got: Buffer;
    try {
      got = await this.client.get(this.keys.chunk(hex), { into: room });
    } catch (err) {
      if (err instanceof S3Error && err.code === 'S3_NOT_FOUND') {
        throw new ColdvaultError('CHUNK_MISSING', `chunk ${hex} is missing from ${this.client.where}`, { cause: err });
      }
      throw err;
    }
    if (got.length > room.length) throw new ColdvaultError('CHUNK_CORRUPT', `chunk ${hex} is corrupt: ${got.length} bytes, more than any chunk blob`);
    if (got.buffer !== buf) room.set(got);
    return got.length;
  }
}
