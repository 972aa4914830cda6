/**
 * The base snapshots kept for changed-extent nightlies, and the space each one costs: the bytes of
 * its extents that are not SHARED (FIEMAP), i.e. the blocks the guest rewrote since the base was
 * made, which only the base still holds. Bases are found in snapshot folders laid out as the reflink
 * provider makes them: `<folder>/.coldvault-snapshots/<vmid>/<disk key>.base-<datastore id>`, each
 * with its record `<that path>.base.json` (base-record.ts); a base without a good record is listed
 * with the reason (it is not used, and takes space until the next backup replaces it).
 */
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, errnoCode, FIEMAP_EXTENT, ioError, loadNative } from '../core/index.js';
import { parseSnapshotName, SNAPSHOT_FOLDER } from '../guests/snapshots/index.js';
import { readBaseRecord } from './base-record.js';

/** The tag of a base, `base-<datastore id>` (jobs/snapshot-bases.ts makes them). */
const BASE_TAG = /^base-(.+)$/;

export interface BaseListing {
  guestId: string;
  disk: string;
  datastoreId: string;
  snapshotPath: string;
  size: number;
  /** the version and index whose digests the base stands for (undefined without a good record) */
  version?: number;
  index?: string;
  /** when the snapshot was made (ISO) */
  created: string;
  /** bytes only the base holds (its extents not SHARED); null when FIEMAP cannot tell */
  exclusiveBytes: number | null;
  /** why the base is not used (a missing, damaged or replaced record) */
  problem?: string;
}

/** Every base under the given parent folders (each may hold a `.coldvault-snapshots` folder). */
export async function listBases(parents: Iterable<string>): Promise<BaseListing[]> {
  const out: BaseListing[] = [];
  for (const parent of new Set(parents)) {
    const top = join(parent, SNAPSHOT_FOLDER);
    for (const guestId of (await names(top)).filter((n) => /^[1-9][0-9]*$/.test(n))) {
      for (const name of await names(join(top, guestId))) {
        const parsed = parseSnapshotName(name);
        const store = parsed && BASE_TAG.exec(parsed.tag)?.[1];
        if (parsed && store) out.push(await describeBase(join(top, guestId, name), guestId, parsed.key, store));
      }
    }
  }
  return out.sort((a, b) => Number(a.guestId) - Number(b.guestId) || a.disk.localeCompare(b.disk) || a.datastoreId.localeCompare(b.datastoreId));
}

async function names(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return [];
    throw ioError(`listing the snapshot folder '${dir}'`, err);
  }
}

async function describeBase(path: string, guestId: string, disk: string, datastoreId: string): Promise<BaseListing> {
  const s = await stat(path);
  const read = await readBaseRecord(path);
  const named = read.record && [read.record.guestId, read.record.disk, read.record.datastoreId].join('/');
  const mismatch = named !== undefined && named !== [guestId, disk, datastoreId].join('/') ? `its record is for ${named}` : undefined;
  const r = mismatch ? undefined : read.record;
  return {
    guestId,
    disk,
    datastoreId,
    snapshotPath: path,
    size: s.size,
    version: r?.version,
    index: r?.index,
    created: r?.created ?? s.mtime.toISOString(),
    exclusiveBytes: await exclusiveBytes(path),
    problem: mismatch ?? read.reason,
  };
}

/** Bytes of the file's extents that no other file shares (null: no FIEMAP here). */
export async function exclusiveBytes(path: string): Promise<number | null> {
  const extents = loadNative()?.extents;
  if (!extents) return null;
  const file = await open(path, 'r');
  try {
    return extents(file.fd, false)
      .filter((e) => (e.flags & FIEMAP_EXTENT.SHARED) === 0)
      .reduce((sum, e) => sum + e.length, 0);
  } catch (err) {
    if (errnoCode(err) === 'EOPNOTSUPP') return null;
    throw ioError(`reading the extent map of '${path}' (${describeError(err)})`, err);
  } finally {
    await file.close();
  }
}
