/**
 * Is an attached device still there and whole? Read from sysfs (lsblk's own source), no tool run,
 * nothing read from the device itself: a pulled USB disk disappears from /sys/class/block, and a
 * loop device whose size limit was cut (the tests' "unplug") reports its new, smaller size.
 */
import { readFile, realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import { formatBytes } from '../core/index.js';
import type { BlockDevice } from './lsblk.js';

/** The size of a block device in bytes from sysfs, or null when the kernel no longer lists it. */
export async function currentDeviceSize(devicePath: string): Promise<number | null> {
  const kernelName = basename(await realpath(devicePath).catch(() => devicePath)); // /dev/mapper/x -> dm-0
  try {
    const sectors = await readFile(`/sys/class/block/${kernelName}/size`, 'utf8');
    return Number.parseInt(sectors.trim(), 10) * 512;
  } catch {
    return null;
  }
}

/** What is wrong with `device` compared with when it was found: vanished, or shrunk; undefined when nothing. */
export async function deviceProblem(device: Pick<BlockDevice, 'path' | 'size'>): Promise<string | undefined> {
  const size = await currentDeviceSize(device.path);
  if (size === null) return `${device.path} is no longer attached`;
  if (size < device.size) return `its size dropped from ${formatBytes(device.size)} to ${formatBytes(size)}`;
  return undefined;
}
