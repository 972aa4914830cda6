/** Which paths are mounts, with which options, and which devices are mounted, from /proc/self/mountinfo. */
import { readFile, realpath } from 'node:fs/promises';

export interface MountEntry {
  mountpoint: string;
  fstype: string;
  source: string;
  /** the mount's own flags (field 6: rw/ro, nosuid, nodev, noexec, relatime...) */
  options: string[];
  /** the filesystem's options (after the separator: e.g. ext4's `norecovery`, xfs's `norecovery`) */
  superOptions: string[];
}

const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses mountinfo text: field 5 is the mountpoint, 6 its options; after the ' - ' separator: fstype, source, super options. */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    if (left.length < 6 || right.length < 2) continue;
    entries.push({
      mountpoint: unescape(left[4]!),
      fstype: right[0]!,
      source: unescape(right[1]!),
      options: left[5]!.split(','),
      superOptions: (right[2] ?? '').split(',').filter(Boolean),
    });
  }
  return entries;
}

export async function readMounts(): Promise<MountEntry[]> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

/** `path` with symlinks resolved, or as given when it does not exist. */
export async function canonicalPath(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return path;
  }
}

/** The mount whose mountpoint is `dir` itself (the topmost, when several are stacked), or undefined. */
export async function mountAt(dir: string): Promise<MountEntry | undefined> {
  const path = await canonicalPath(dir);
  return (await readMounts()).filter((m) => m.mountpoint === path).at(-1);
}

/** True when `dir` itself is a mountpoint. */
export async function isMountpoint(dir: string): Promise<boolean> {
  return (await mountAt(dir)) !== undefined;
}

/** The mountpoints where the device `devicePath` is mounted (empty when it is not). */
export async function mountsOfDevice(devicePath: string): Promise<string[]> {
  const path = await canonicalPath(devicePath);
  return (await readMounts()).filter((m) => m.source === path || m.source === devicePath).map((m) => m.mountpoint);
}
