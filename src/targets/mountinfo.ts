/** Which paths are mounts, and which devices are mounted, from /proc/self/mountinfo. */
import { readFile, realpath } from 'node:fs/promises';

export interface MountEntry {
  mountpoint: string;
  fstype: string;
  source: string;
}

const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses mountinfo text: field 5 is the mountpoint; after the ' - ' separator: fstype, source. */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    if (left.length < 5 || right.length < 2) continue;
    entries.push({ mountpoint: unescape(left[4]!), fstype: right[0]!, source: unescape(right[1]!) });
  }
  return entries;
}

export async function readMounts(): Promise<MountEntry[]> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

async function canonical(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return path;
  }
}

/** True when `dir` itself is a mountpoint. */
export async function isMountpoint(dir: string): Promise<boolean> {
  const path = await canonical(dir);
  return (await readMounts()).some((m) => m.mountpoint === path);
}

/** The mountpoints where the device `devicePath` is mounted (empty when it is not). */
export async function mountsOfDevice(devicePath: string): Promise<string[]> {
  const path = await canonical(devicePath);
  return (await readMounts()).filter((m) => m.source === path || m.source === devicePath).map((m) => m.mountpoint);
}
