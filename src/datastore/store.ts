/**
 * The Datastore: opens or creates a store on a directory and gives access to its chunks, versions,
 * locks and housekeeping. The catalog and the pipeline build on it; it knows nothing of either.
 */
import { randomUUID } from 'node:crypto';
import { chmod, readdir, readFile, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { type Clock, ColdvaultError, errnoCode, ioError, type Seams, systemClock } from '../core/index.js';
import { CHUNK_SIZE, DATASTORE_FORMAT, DATASTORE_ID_FILE, decodeIdentity, encodeIdentity, type DatastoreIdentity, type Manifest } from '../format/index.js';
import { ChunkStore } from './chunks.js';
import { ensureDir, PRIVATE_DIR, TEMP_MARK, writeFileDurable } from './durable.js';
import { LockDir } from './locks.js';
import { VersionFolders } from './versions.js';

export interface DatastoreReader {
  readonly dir: string;
  readonly identity: DatastoreIdentity;
  listGuestIds(): Promise<string[]>;
  listVersionNumbers(guestId: string): Promise<number[]>;
  readManifest(guestId: string, version: number): Promise<Manifest>;
  isProtected?(guestId: string, version: number): Promise<boolean>;
}

/** The folders `init` makes before the identity file, which it writes last. */
const SKELETON = ['chunks', 'guests', 'locks', 'quarantine'];

/**
 * The entries that make a folder not empty for `init`. What a fresh filesystem carries does not count,
 * and neither does what an `init` cut short (killed, power cut) left: its empty skeleton folders and a
 * temp identity file, so `init` can simply be run again.
 */
async function foreignEntries(dir: string, entries: string[]): Promise<string[]> {
  const foreign: string[] = [];
  for (const e of entries) {
    if (IGNORABLE_ENTRIES.has(e) || e.startsWith(`${DATASTORE_ID_FILE}${TEMP_MARK}`)) continue;
    if (
      SKELETON.includes(e) &&
      (await readdir(join(dir, e)).then(
        (n) => n.length === 0,
        () => false,
      ))
    )
      continue;
    foreign.push(e);
  }
  return foreign;
}

/** Names a datastore may share its folder with: what a fresh filesystem carries. */
const IGNORABLE_ENTRIES = new Set(['lost+found', 'System Volume Information', '$RECYCLE.BIN', '.Trash-0']);

export class Datastore extends VersionFolders implements DatastoreReader {
  readonly chunks: ChunkStore;
  readonly locks: LockDir;
  /** the clock of the times garbage collection compares (core/seams.ts) */
  readonly clock: Clock;

  private constructor(
    readonly dir: string,
    readonly identity: DatastoreIdentity,
    private readonly seams: Seams = {},
  ) {
    super(join(dir, 'guests'));
    this.clock = seams.clock ?? systemClock;
    this.chunks = new ChunkStore(join(dir, 'chunks'), join(dir, 'quarantine'), this.clock);
    this.locks = new LockDir(join(dir, 'locks'), this.clock, seams.checkpoint);
  }

  /** Lets a test park an operation between its steps (core/seams.ts); nothing waits in production. */
  async checkpoint(step: string): Promise<void> {
    if (this.seams.checkpoint) await this.seams.checkpoint(step);
  }

  /** Creates a datastore in `dir` (created if missing); refuses a folder that holds anything else. */
  static async init(dir: string, seams?: Seams): Promise<Datastore> {
    await ensureDir(dir);
    const entries = await readdir(dir);
    if (entries.includes(DATASTORE_ID_FILE)) {
      throw new ColdvaultError('DATASTORE_EXISTS', `'${dir}' already holds a coldvault datastore`);
    }
    const foreign = await foreignEntries(dir, entries);
    if (foreign.length > 0) {
      throw new ColdvaultError(
        'FOLDER_NOT_EMPTY',
        `refusing to create a datastore in '${dir}': the folder is not empty (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''})`,
      );
    }
    // the folder is the store's now: private, also when it existed (a fresh disk's root is 0755); a
    // filesystem without Unix modes (exFAT) refuses: its mount options decide (privacy.ts says so)
    await chmod(dir, PRIVATE_DIR).catch(() => undefined);
    for (const sub of SKELETON) await ensureDir(join(dir, sub));
    const identity: DatastoreIdentity = { format: DATASTORE_FORMAT, id: randomUUID(), created: new Date().toISOString(), chunkSize: CHUNK_SIZE };
    await writeFileDurable(join(dir, DATASTORE_ID_FILE), encodeIdentity(identity));
    return new Datastore(dir, identity, seams);
  }

  /** Opens an existing datastore; NOT_A_DATASTORE / DATASTORE_TOO_NEW with the folder named. */
  static async open(dir: string, seams?: Seams): Promise<Datastore> {
    let file: Buffer;
    try {
      file = await readFile(join(dir, DATASTORE_ID_FILE));
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        const exists = await stat(dir).then(
          (s) => s.isDirectory(),
          () => false,
        );
        throw new ColdvaultError(
          'NOT_A_DATASTORE',
          exists
            ? `'${dir}' is not a coldvault datastore (no ${DATASTORE_ID_FILE}); create one with 'coldvault datastore init ${dir}'`
            : `datastore folder '${dir}' does not exist`,
          { cause: err },
        );
      }
      throw ioError(`opening datastore '${dir}'`, err);
    }
    const identity = decodeIdentity(file, dir);
    if (identity.chunkSize !== CHUNK_SIZE) {
      throw new ColdvaultError('DATASTORE_CORRUPT', `datastore '${dir}' uses chunk size ${identity.chunkSize}; this coldvault writes ${CHUNK_SIZE}`);
    }
    return new Datastore(dir, identity, seams);
  }

  /** Free and total bytes of the filesystem that holds the store. */
  async space(): Promise<{ free: number; total: number }> {
    return filesystemSpace(this.dir);
  }
}

export async function filesystemSpace(dir: string): Promise<{ free: number; total: number }> {
  try {
    const s = await statfs(dir);
    return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
  } catch (err) {
    throw ioError(`reading free space of '${dir}'`, err);
  }
}
