/**
 * The mountpoint rule: coldvault never mounts a disk over a folder that is a datastore in use. The
 * folder is refused when
 * - it is a mountpoint already (another disk, or this one, is mounted there);
 * - a datastore lock under it (`<folder>/locks/*.lock`, `writer-*.json`) names a live process: a
 *   backup, restore, prune or gc works in it, and would go on writing beside the mounted disk;
 * - it holds a datastore (`coldvault-datastore.json`) that is not the disk's own: the mount would
 *   hide it from everyone who uses it (a configured datastore, a job's store).
 * The lock files are the datastore's (datastore/locks.ts: JSON `{pid, host, start, purpose}`); they
 * are read here, not through datastore/, because targets sits below it. A holder on another host
 * counts as live (its pid cannot be checked from here), as the datastore's own rule says.
 */
import { readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { errnoCode } from '../core/index.js';
import { readDatastoreId } from './identity.js';
import { mountAt } from './mountinfo.js';

interface LockHolder {
  pid: number;
  host: string;
  purpose?: string;
}

/** Why the disk may not be mounted on `dir`, or undefined. `diskDatastoreId` looks at the disk (only when needed). */
export async function mountpointProblem(dir: string, diskDatastoreId: () => Promise<string | null>): Promise<string | undefined> {
  const mount = await mountAt(dir);
  if (mount) return `'${dir}' is already a mountpoint (of ${mount.source})`;
  const holder = await liveLockHolder(join(dir, 'locks'));
  if (holder) return `'${dir}' is a datastore in use: ${holder}`;
  const own = await folderDatastoreId(dir);
  if (own === null) return undefined;
  const disk = await diskDatastoreId();
  if (disk === own) return undefined;
  return `'${dir}' holds datastore ${own}, not the disk's (${disk === null ? 'the disk holds none' : `it holds ${disk}`}); mounting over it would hide that datastore`;
}

/** The datastore id of the folder itself (under any mount), 'an unreadable one' when its identity file is damaged. */
async function folderDatastoreId(dir: string): Promise<string | null> {
  try {
    return await readDatastoreId(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return null;
    return 'an unreadable one';
  }
}

/** The first lock in `locksDir` held by a live process, described; undefined when none is. */
async function liveLockHolder(locksDir: string): Promise<string | undefined> {
  const names = await readdir(locksDir).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.endsWith('.lock') || (n.startsWith('writer-') && n.endsWith('.json')))) {
    const holder = await readHolder(join(locksDir, name));
    if (holder && holderAlive(holder)) return `its lock ${name} is held by ${holder.purpose ?? 'a process'} (pid ${holder.pid} on ${holder.host})`;
  }
  return undefined;
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<LockHolder>;
    return typeof parsed.pid === 'number' && typeof parsed.host === 'string' ? (parsed as LockHolder) : undefined;
  } catch {
    return undefined; // gone meanwhile, or empty (a crash's leftover, or written this very instant)
  }
}

function holderAlive(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return true;
  if (!Number.isInteger(holder.pid) || holder.pid <= 0) return false;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}
