/**
 * A block device set read-only in the kernel (BLKROSET, as `blockdev --setro` does) while coldvault
 * has it mounted read-only. A read-only mount alone still writes: ext4 cleans up orphan inodes "on
 * readonly fs" even with `noload`, and records errors it meets in the superblock. With the device
 * read-only, ext4 skips both, and ext4 and xfs refuse any journal replay; nothing can change the disk.
 * The state before is put back after the unmount: a device that was read-only already stays so.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ColdvaultError } from '../core/index.js';
import { run, stderrOf } from './exec.js';
import { canonicalPath } from './mountinfo.js';

/** Whether the kernel treats `devicePath` as read-only (sysfs `ro`: the device's flag, or its disk's). */
export async function isDeviceReadOnly(devicePath: string): Promise<boolean> {
  const kernelName = basename(await canonicalPath(devicePath)); // /dev/mapper/x -> dm-0
  try {
    return (await readFile(`/sys/class/block/${kernelName}/ro`, 'utf8')).trim() === '1';
  } catch (cause) {
    throw new ColdvaultError('DEVICE_NOT_FOUND', `reading whether ${devicePath} is read-only failed: it is not a block device the kernel lists`, { cause });
  }
}

/** Sets (or clears) the kernel's read-only flag of the device. */
export async function setDeviceReadOnly(devicePath: string, readOnly: boolean): Promise<void> {
  try {
    await run('blockdev', [readOnly ? '--setro' : '--setrw', devicePath]);
  } catch (err) {
    throw new ColdvaultError('DEVICE_MOUNT_FAILED', `setting ${devicePath} ${readOnly ? 'read-only' : 'writable'} failed: ${stderrOf(err)}`, { cause: err });
  }
}

/** Makes the device read-only; returns what puts its flag back (nothing to do when it was read-only already). */
export async function holdReadOnly(devicePath: string): Promise<() => Promise<void>> {
  if (await isDeviceReadOnly(devicePath)) return () => Promise.resolve();
  await setDeviceReadOnly(devicePath, true);
  return () => setDeviceReadOnly(devicePath, false);
}

/** Refuses a read-write mount of a read-only device (mount(8) would quietly mount it read-only). */
export async function checkWritable(devicePath: string): Promise<void> {
  if (!(await isDeviceReadOnly(devicePath))) return;
  throw new ColdvaultError(
    'DEVICE_MOUNT_FAILED',
    `mounting ${devicePath} read-write failed: the device is read-only (a write-protect switch, ` +
      `'blockdev --setro', or a coldvault restore or probe killed while it had the disk mounted read-only); 'blockdev --setrw ${devicePath}' makes it writable`,
  );
}
