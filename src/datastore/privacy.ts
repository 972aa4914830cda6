/**
 * Private files, checked: coldvault creates datastore and state files 0600 in 0700 folders
 * (durable.ts), but a store made by an older version, copied with `cp -r` under umask 022, or
 * chmod'ed by hand may let other local users read the backups. `checkPrivate` walks trees (lstat,
 * symlinks not followed) and names what group or others may read, write or enter, a few paths per
 * tree; `privacyWarnings` turns that into log lines with the fix (`chmod -R go-rwx <dir>`).
 *
 * Filesystems without Unix modes (FAT, exFAT, NTFS through ntfs-3g or ntfs3) show every file with
 * the mode their mount options give (umask, fmask, dmask): walking them says nothing file by file.
 * Their trees are not walked; the root alone tells what the mount gives, and the report says once
 * that the modes cannot be checked, with the mount options that make the files private.
 */
import { lstat, readdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../core/index.js';
import { readMounts } from '../targets/index.js';

/** Filesystem types (mountinfo) that store no Unix modes; fuseblk is ntfs-3g or exfat-fuse. */
const NO_MODES = new Set(['vfat', 'msdos', 'fat', 'exfat', 'ntfs', 'ntfs3', 'fuseblk']);

export interface PrivacyReport {
  root: string;
  /** paths (at most `sample`) that group or others may use */
  exposed: string[];
  /** more were found than `exposed` names */
  more: boolean;
  /** the filesystem type when it has no Unix modes (the tree was not walked) */
  noModes?: string;
}

/** Checks each root (a folder or a file; one that does not exist is skipped). */
export async function checkPrivate(roots: string[], sample = 5): Promise<PrivacyReport[]> {
  const reports: PrivacyReport[] = [];
  for (const root of roots) {
    const top = await lstat(root).catch(() => undefined);
    if (!top) continue;
    const report: PrivacyReport = { root, exposed: [], more: false, noModes: await modelessType(root) };
    if (report.noModes) {
      if (exposedMode(top.mode)) report.exposed.push(root);
    } else {
      await walk(root, report, sample);
    }
    reports.push(report);
  }
  return reports;
}

const exposedMode = (mode: number): boolean => (mode & 0o077) !== 0;

/** Folders looked at side by side (each lstat is a trip through libuv's thread pool). */
const WALKERS = 8;

/** Over the tree, WALKERS folders at a time, the entries of each side by side; stops once `sample` + 1 are found. */
async function walk(root: string, report: PrivacyReport, sample: number): Promise<void> {
  const note = (path: string): void => {
    if (report.exposed.length < sample) report.exposed.push(path);
    else report.more = true;
  };
  const top = await lstat(root);
  if (exposedMode(top.mode)) note(root);
  if (!top.isDirectory()) return;
  const folders = [root];
  let busy = 0;
  const walker = async (): Promise<void> => {
    while (!report.more && (folders.length > 0 || busy > 0)) {
      const dir = folders.pop();
      if (dir === undefined) {
        await new Promise((r) => setImmediate(r)); // another walker may still find folders
        continue;
      }
      busy++;
      for (const entry of await entriesOf(dir)) {
        if (exposedMode(entry.mode)) note(entry.path);
        if (entry.folder) folders.push(entry.path);
      }
      busy--;
    }
  };
  await Promise.all(Array.from({ length: WALKERS }, walker));
}

/** A folder's entries with their modes; symlinks left out; what cannot be read is skipped (verify's reads report the disk). */
async function entriesOf(dir: string): Promise<Array<{ path: string; mode: number; folder: boolean }>> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const stats = await Promise.all(
    names.map((name) =>
      lstat(join(dir, name)).then(
        (s) => ({ path: join(dir, name), s }),
        () => undefined,
      ),
    ),
  );
  return stats.flatMap((e) => (e && !e.s.isSymbolicLink() ? [{ path: e.path, mode: e.s.mode, folder: e.s.isDirectory() }] : []));
}

/** The type of the filesystem holding `path` when it has no Unix modes, else undefined. */
async function modelessType(path: string): Promise<string | undefined> {
  const real = await realpath(path).catch(() => path);
  const mounts = await readMounts().catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return []; // no /proc: assume Unix modes
    throw err;
  });
  const holder = mounts
    .filter((m) => real === m.mountpoint || real.startsWith(m.mountpoint.endsWith('/') ? m.mountpoint : `${m.mountpoint}/`))
    .sort((a, b) => b.mountpoint.length - a.mountpoint.length)[0];
  return holder && NO_MODES.has(holder.fstype) ? holder.fstype : undefined;
}

export interface PrivacyLine {
  level: 'INFO' | 'WARN';
  message: string;
}

/** What to tell the admin: a WARN with the fix per exposed tree, a note per tree whose modes cannot be checked. */
export function privacyWarnings(reports: PrivacyReport[]): PrivacyLine[] {
  return reports.flatMap((r): PrivacyLine[] => {
    if (r.noModes) {
      const how = 'mount it with umask=077 (or fmask=0177,dmask=0077), as coldvault mounts external disks';
      return [
        r.exposed.length > 0
          ? { level: 'WARN', message: `'${r.root}' is on ${r.noModes}, which has no Unix file modes: every local user can read the backups there; ${how}` }
          : { level: 'INFO', message: `file modes in '${r.root}' not checked: ${r.noModes} has no Unix file modes (its mount options keep the files private)` },
      ];
    }
    if (r.exposed.length === 0) return [];
    const paths = `${r.exposed.map((p) => `'${p}'`).join(', ')}${r.more ? ' and more' : ''}`;
    return [
      {
        level: 'WARN',
        message: `other local users may read or change files in '${r.root}' (${paths}); make them private to their owner: chmod -R go-rwx '${r.root}'`,
      },
    ];
  });
}
