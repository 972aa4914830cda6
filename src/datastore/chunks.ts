/**
 * The chunk store: `chunks/<first 4 hex>/<64 hex>`, one blob per chunk, named by the SHA-256 of its
 * plain bytes. Contracts:
 * - `insert` is idempotent (same name, same bytes) and durable for the file's data before its name
 *   appears (temp + fdatasync + rename); the folder entries become durable with `syncDirs`, which a
 *   backup calls before it publishes a version. So a chunk name never points at partial data.
 * - `touch` marks a chunk as used now (its mtime) and says whether it exists. A backup touches every
 *   chunk it dedups against, which is what keeps garbage collection from sweeping it (see gc.ts).
 * - `quarantine` moves a bad chunk aside; the next backup that needs it writes it afresh.
 * - `insertReceived` is `insert` for a blob from an untrusted sender (another node's push): it is
 *   checked first (received.ts) and refused with CHUNK_FORGED, nothing written, unless its content
 *   hashes to its name. `touchOrMissing` is the sender's dedup question: every chunk of the list that
 *   is there is touched (as a backup touches what it reuses), the others are answered missing.
 * - Garbage collection moves a candidate aside (`<hex>.cvgc-<pid>-<rand>`) before its last look
 *   (gc.ts). A gc that dies (kill -9, power cut) may leave it there, and the chunk may be one a version
 *   published meanwhile references: so nothing ever deletes such a leftover. A read that misses a
 *   chunk puts a leftover back (`recoverAside`), and so does the next gc before it marks.
 * A blob handed over in an aligned buffer (core/aligned.ts) is written with O_DIRECT: the backup's
 * chunks do not pass through the page cache, where they would push out what the host has cached, and
 * cost the kernel less (bench/RESULTS.md). A filesystem that refuses O_DIRECT gets buffered writes.
 */
import { randomBytes } from 'node:crypto';
import { open, readdir, rename, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { constants } from 'node:fs';
import { alignUp, type Clock, ColdvaultError, DIRECT_ALIGN, directAligned, errnoCode, ioError, systemClock } from '../core/index.js';
import { CHUNK_SIZE, isDigestHex, maxBlobSize } from '../format/index.js';
import { ensureDir, fsyncDir, TEMP_MARK, writeFileDirect, writeFileDurable } from './durable.js';
import { checkOnThisThread, type ReceivedCheck } from './received.js';

/** Marker of a chunk garbage collection moved aside: `<hex>.cvgc-<pid>-<rand>`. */
export const GC_ASIDE_MARK = '.cvgc-';

export class ChunkStore {
  private readonly knownDirs = new Set<string>();
  private readonly dirtyDirs = new Set<string>();
  /** false once the filesystem refused O_DIRECT: buffered writes (reads) from then on */
  private directWrites = true;
  private directReads = true;

  constructor(
    readonly dir: string,
    private readonly quarantineDir: string,
    /** the times of writes and touches, which garbage collection compares (gc.ts) */
    private readonly clock: Clock = systemClock,
  ) {}

  pathOf(hex: string): string {
    return join(this.dir, hex.slice(0, 4), hex);
  }

  /** Sets the chunk's mtime to now; false when it does not exist. */
  async touch(hex: string): Promise<boolean> {
    const now = new Date(this.clock.now());
    try {
      await utimes(this.pathOf(hex), now, now);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw ioError(`touching chunk ${hex} in '${this.dir}'`, err);
    }
  }

  async insert(hex: string, blob: Uint8Array): Promise<void> {
    const path = this.pathOf(hex);
    const prefixDir = join(this.dir, hex.slice(0, 4));
    if (!this.knownDirs.has(prefixDir)) {
      await ensureDir(prefixDir);
      this.knownDirs.add(prefixDir);
      this.dirtyDirs.add(this.dir);
    }
    const doing = `inserting chunk ${hex} into '${this.dir}'`;
    const direct = this.directWrites && directAligned(blob, 0, true);
    const mtimeMs = this.clock.now();
    if (!direct || !(await writeFileDirect(path, blob, doing, mtimeMs))) {
      if (direct) this.directWrites = false;
      await writeFileDurable(path, blob, { syncDir: false, dataOnly: true, doing, mtimeMs });
    }
    this.dirtyDirs.add(prefixDir);
  }

  /**
   * Checks a blob from an untrusted sender (CHUNK_FORGED, nothing written), then inserts it; returns
   * the blob as written (the check may hand back a new view of it: a worker's transfer).
   */
  async insertReceived(hex: string, blob: Uint8Array, check: ReceivedCheck = checkOnThisThread): Promise<Uint8Array> {
    const checked = await check(hex, blob);
    await this.insert(hex, checked);
    return checked;
  }

  /** Touches every chunk of `hexes` that is there (side by side, a few at a time); returns the others. */
  touchOrMissing(hexes: Iterable<string>): Promise<string[]> {
    return this.failing(hexes, (hex) => this.touch(hex));
  }

  /** A chunk's blob as stored (CHUNK_MISSING, CHUNK_CORRUPT when larger than any blob); the reader checks it. */
  async readBlob(hex: string): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(maxBlobSize(CHUNK_SIZE));
    const length = await this.readInto(hex, buf.buffer, buf.byteOffset);
    return buf.subarray(0, length);
  }

  /**
   * Makes every insert so far durable by name (fsync of the touched folders). The fsyncs run side by
   * side: a journaling filesystem (ext4, xfs) serves all that wait on one journal commit with that one
   * commit, where one after the other each waited for its own (230 folders: 0.3 s -> a few ms).
   */
  async syncDirs(): Promise<void> {
    const dirs = [...this.dirtyDirs];
    this.dirtyDirs.clear();
    const results = await Promise.allSettled(dirs.map((dir) => fsyncDir(dir)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      for (const dir of dirs) this.dirtyDirs.add(dir);
      throw failed.reason;
    }
  }

  /**
   * Reads a chunk blob into `buf` from byte `offset` on; returns its length. A file larger than the
   * room is CHUNK_CORRUPT. With an aligned `offset` (core/aligned.ts) and room for a whole last block
   * the read is O_DIRECT: one request per blob to the disk, and a verify of a whole store does not
   * push the host's cached data out. A filesystem that refuses O_DIRECT gets buffered reads.
   */
  async readInto(hex: string, buf: ArrayBuffer, offset = 0, recovered = false): Promise<number> {
    const room = buf.byteLength - offset;
    const blockRoom = room - (room % DIRECT_ALIGN);
    let opened: { handle: FileHandle; direct: boolean } | undefined;
    try {
      opened = await this.openForRead(hex, this.directReads && directAligned(new Uint8Array(buf, offset, blockRoom), 0));
      const size = (await opened.handle.stat()).size;
      if (size > room) throw new ColdvaultError('CHUNK_CORRUPT', `chunk ${hex} is corrupt: ${size} bytes, more than any chunk blob`);
      const view = new Uint8Array(buf, offset, opened.direct ? Math.min(alignUp(size), blockRoom) : size);
      let done = 0;
      while (done < size) {
        const { bytesRead } = await opened.handle.read(view, done, view.length - done, done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return Math.min(done, size);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' && !recovered && (await this.recoverAside(hex))) return await this.readInto(hex, buf, offset, true);
      if (errnoCode(err) === 'ENOENT') throw new ColdvaultError('CHUNK_MISSING', `chunk ${hex} is missing from '${this.dir}'`, { cause: err });
      if (opened?.direct && errnoCode(err) === 'EINVAL') {
        this.directReads = false; // the device wants a larger alignment than DIRECT_ALIGN: buffered from now on
        return await this.readInto(hex, buf, offset, recovered);
      }
      throw ioError(`reading chunk ${hex} from '${this.dir}'`, err);
    } finally {
      await opened?.handle.close();
    }
  }

  private async openForRead(hex: string, direct: boolean): Promise<{ handle: FileHandle; direct: boolean }> {
    const path = this.pathOf(hex);
    if (direct) {
      try {
        return { handle: await open(path, constants.O_RDONLY | constants.O_DIRECT), direct: true };
      } catch (err) {
        if (errnoCode(err) !== 'EINVAL') throw err;
        this.directReads = false; // the filesystem refused O_DIRECT: buffered reads from now on
      }
    }
    return { handle: await open(path, 'r'), direct: false };
  }

  /** The chunks of `hexes` that are not in the store (looked at side by side, a few at a time). */
  missing(hexes: Iterable<string>): Promise<string[]> {
    return this.failing(hexes, (hex) => this.present(hex));
  }

  /** The chunks of `hexes` for which `test` answers false, tested 32 side by side at a time. */
  private async failing(hexes: Iterable<string>, test: (hex: string) => Promise<boolean>): Promise<string[]> {
    const all = [...hexes];
    const gone: string[] = [];
    for (let i = 0; i < all.length; i += 32) {
      const batch = all.slice(i, i + 32);
      const passed = await Promise.all(batch.map(test));
      batch.forEach((hex, j) => {
        if (!passed[j]) gone.push(hex);
      });
    }
    return gone;
  }

  private async present(hex: string): Promise<boolean> {
    try {
      await stat(this.pathOf(hex));
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw ioError(`looking for chunk ${hex} in '${this.dir}'`, err);
    }
  }

  async exists(hex: string): Promise<boolean> {
    try {
      const h = await open(this.pathOf(hex), 'r');
      await h.close();
      return true;
    } catch {
      return false;
    }
  }

  /** Moves a bad chunk to the quarantine folder; returns its new path (or undefined if it was gone). */
  async quarantine(hex: string): Promise<string | undefined> {
    await ensureDir(this.quarantineDir);
    const target = join(this.quarantineDir, `${hex}.${Date.now()}`);
    try {
      await rename(this.pathOf(hex), target);
      await fsyncDir(join(this.dir, hex.slice(0, 4)));
      return target;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw ioError(`moving bad chunk ${hex} to '${this.quarantineDir}'`, err);
    }
  }

  /** A name to move chunk `hex` aside under while garbage collection takes its last look. */
  asidePath(hex: string): string {
    return `${this.pathOf(hex)}${GC_ASIDE_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
  }

  /**
   * When chunk `hex` is missing but a copy moved aside by gc is there: waits a moment for a live gc to
   * put it back, then puts it back itself (that gc died, or is about to delete a chunk that is read, so
   * referenced). True when the chunk is in place again. On a read-only store nothing can be put back.
   */
  async recoverAside(hex: string, waitMs = 1000): Promise<boolean> {
    for (let waited = 0; waited < waitMs; waited += 20) {
      if ((await this.asideCopies(hex)).length === 0) return this.present(hex);
      if (await this.present(hex)) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.putBack(hex);
  }

  /** Puts one aside copy of `hex` back unless the chunk is there; drops the other copies. True when the chunk is in place. */
  async putBack(hex: string): Promise<boolean> {
    for (const copy of await this.asideCopies(hex)) {
      try {
        if (await this.present(hex)) await unlink(copy);
        else await rename(copy, this.pathOf(hex));
      } catch (err) {
        if (errnoCode(err) === 'EROFS') return false;
        if (errnoCode(err) !== 'ENOENT') throw ioError(`putting chunk ${hex} back in '${this.dir}'`, err);
      }
    }
    return this.present(hex);
  }

  private async asideCopies(hex: string): Promise<string[]> {
    const dir = join(this.dir, hex.slice(0, 4));
    const names = await readdir(dir).catch(() => [] as string[]);
    return names.filter((n) => n.startsWith(`${hex}${GC_ASIDE_MARK}`)).map((n) => join(dir, n));
  }

  /** Every chunk file and every leftover temp file, folder by folder. */
  /**
   * Every chunk file, leftover temp file and copy moved aside by a gc (`hex` names the chunk), folder
   * by folder; each folder is read once, before its entries are handed out.
   */
  async *list(): AsyncGenerator<{ name: string; path: string; kind: 'chunk' | 'temp' | 'aside'; hex: string }> {
    const prefixes = await readdir(this.dir).catch(() => [] as string[]);
    for (const prefix of prefixes.sort()) {
      if (!/^[0-9a-f]{4}$/.test(prefix)) continue;
      const names = await readdir(join(this.dir, prefix)).catch(() => [] as string[]);
      for (const name of names) {
        const kind = name.includes(GC_ASIDE_MARK) ? 'aside' : name.includes(TEMP_MARK) ? 'temp' : isDigestHex(name) ? 'chunk' : undefined;
        if (kind) yield { name, path: join(this.dir, prefix, name), kind, hex: name.slice(0, 64) };
      }
    }
  }
}
