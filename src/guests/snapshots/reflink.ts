/**
 * The reflink provider: a snapshot is a reflink clone of the disk file (FICLONE, what
 * `cp --reflink=always` does; Node's copyFile with COPYFILE_FICLONE_FORCE, which fails rather than
 * copy), made in the snapshot folder on the disk's own filesystem (place.ts). The clone shares every
 * block with the disk, so it is instant and costs no space until the guest rewrites a block.
 * create: clone to a temp name, fix its mode and time, fsync, rename, fsync the folder.
 */
import { constants } from 'node:fs';
import { copyFile, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ColdvaultError, describeError, errnoCode, ioError, type ColdSnapshot, type SnapshotProvider, type SnapshotSource } from '../../core/index.js';
import { ensurePlace, parseSnapshotName, PRIVATE_FILE, snapshotName, snapshotPlace, type SnapshotPlace } from './place.js';
import { probeReflink } from './probe.js';

/** A temp clone older than this was left by a create that was cut short (a clone takes milliseconds). */
const STALE_TEMP_MS = 10 * 60_000;

export interface ReflinkOptions {
  /** the storage folders (id -> folder): the snapshot folder goes to the top of the one holding the disk */
  storageDirs: readonly string[];
}

export class ReflinkProvider implements SnapshotProvider {
  readonly name = 'reflink';
  /** the probe's answer per filesystem (device number) */
  private readonly probes = new Map<number, Promise<string | undefined>>();

  constructor(private readonly opts: ReflinkOptions) {}

  async refusal(source: SnapshotSource): Promise<string | undefined> {
    let disk;
    try {
      disk = await stat(source.path);
    } catch (err) {
      return `its image '${source.path}' cannot be read (${errnoCode(err) ?? describeError(err)})`;
    }
    if (!disk.isFile()) return `'${source.path}' is not a regular file (a reflink clone is made of a file)`;
    const place = await snapshotPlace(source, this.opts.storageDirs);
    const parent = await stat(place.parent);
    if (parent.dev !== disk.dev) return `the folder for its snapshots, '${place.parent}', is on another filesystem than the disk`;
    return this.probe(parent.dev, place.parent);
  }

  private probe(dev: number, dir: string): Promise<string | undefined> {
    let answer = this.probes.get(dev);
    if (!answer) {
      answer = probeReflink(dir);
      this.probes.set(dev, answer);
    }
    return answer;
  }

  async create(source: SnapshotSource, tag: string): Promise<ColdSnapshot> {
    const name = snapshotName(source.key, tag);
    const doing = `snapshotting disk '${source.key}' of guest ${source.guestId} ('${source.path}')`;
    let place: SnapshotPlace;
    try {
      place = await snapshotPlace(source, this.opts.storageDirs);
      await ensurePlace(place);
      await removeStaleTemps(place, source.key);
    } catch (err) {
      throw new ColdvaultError('SNAPSHOT_FAILED', `${doing} failed: ${describeError(err)}`, { cause: err });
    }
    const created = Date.now();
    const path = join(place.dir, name);
    await cloneDurably(source.path, path, created, doing).catch(async (err: unknown) => {
      await rmdir(place.dir).catch(() => undefined); // the guest's folder, if this made it and it is empty
      throw err;
    });
    return { ...source, provider: this.name, snapshotPath: path, tag, created };
  }

  async retag(snapshot: ColdSnapshot, tag: string): Promise<ColdSnapshot> {
    const path = join(dirname(snapshot.snapshotPath), snapshotName(snapshot.key, tag));
    try {
      await rename(snapshot.snapshotPath, path);
      await fsyncDir(dirname(path));
    } catch (err) {
      throw ioError(`renaming snapshot '${snapshot.snapshotPath}' to tag '${tag}'`, err);
    }
    return { ...snapshot, snapshotPath: path, tag };
  }

  async remove(snapshot: ColdSnapshot): Promise<void> {
    try {
      await rm(snapshot.snapshotPath, { force: true });
      await fsyncDir(dirname(snapshot.snapshotPath));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw ioError(`removing snapshot '${snapshot.snapshotPath}'`, err);
    }
  }

  async list(guestId: string, sources: SnapshotSource[]): Promise<ColdSnapshot[]> {
    const found: ColdSnapshot[] = [];
    for (const source of sources.filter((s) => s.guestId === guestId)) {
      const place = await snapshotPlace(source, this.opts.storageDirs).catch(() => undefined);
      if (place) found.push(...(await this.snapshotsIn(place, source)));
    }
    return found;
  }

  private async snapshotsIn(place: SnapshotPlace, source: SnapshotSource): Promise<ColdSnapshot[]> {
    const names = await readdir(place.dir).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return [];
      throw ioError(`listing the snapshot folder '${place.dir}'`, err);
    });
    const found: ColdSnapshot[] = [];
    for (const name of names) {
      const parsed = parseSnapshotName(name);
      if (parsed?.key !== source.key) continue;
      const path = join(place.dir, name);
      const s = await stat(path).catch(() => undefined);
      if (s?.isFile()) found.push({ ...source, provider: this.name, snapshotPath: path, tag: parsed.tag, created: s.mtimeMs });
    }
    return found;
  }
}

/** Clone `from` to `to`, whole or not at all (temp name, fsync, rename, fsync the folder). */
async function cloneDurably(from: string, to: string, created: number, doing: string): Promise<void> {
  const temp = `${dirname(to)}/.${to.slice(dirname(to).length + 1)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await copyFile(from, temp, constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL);
    const handle = await open(temp, 'r');
    try {
      await handle.chmod(PRIVATE_FILE);
      await handle.utimes(created / 1000, created / 1000);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, to);
    await fsyncDir(dirname(to));
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw new ColdvaultError('SNAPSHOT_FAILED', `${doing} failed: ${describeError(err)}`, { cause: err });
  }
}

/** Temp clones of this disk left by a create that was cut short (a crash between clone and rename). */
async function removeStaleTemps(place: SnapshotPlace, key: string): Promise<void> {
  for (const name of await readdir(place.dir)) {
    if (!name.startsWith(`.${key}.`) || !/\.tmp-\d+-[0-9a-f]+$/.test(name)) continue;
    const path = join(place.dir, name);
    const s = await stat(path).catch(() => undefined);
    if (s && Date.now() - s.mtimeMs > STALE_TEMP_MS) await rm(path, { force: true });
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
