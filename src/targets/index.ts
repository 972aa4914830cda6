/**
 * targets: where a datastore lives. For now the external device (a USB disk, or in tests a loop
 * device): discovery of attached block devices, and the mount lifecycle of one device.
 *
 * Vocabulary:
 * - block device: one row of `lsblk` (a disk, a partition, a loop device), with its filesystem,
 *   label and UUID; `BlockDevice` in lsblk.ts. Where udev is absent (containers), lsblk leaves the
 *   filesystem fields empty, so they are filled by a low-level `blkid -p` probe.
 * - device spec: how a user names a device: `/dev/sdb1`, `UUID=...`, `LABEL=...` (resolveDevice).
 * - identity: the datastore id in `coldvault-datastore.json` at the filesystem's root; a job is
 *   bound to one id, so a wrong disk is recognised before anything is written (checkIdentity).
 *
 * Algorithm of discovery (listDevices): lsblk -> flatten the tree -> keep unmounted filesystems of
 * removable / hotplug / USB devices (`all`: also loop devices and fixed disks) -> for each, mount it
 * read-only without journal replay in a fresh temp dir, read the identity, always unmount.
 *
 * Contracts: mountDevice refuses a mountpoint that is already a mount and a device that is mounted
 * elsewhere (DEVICE_MOUNT_FAILED, with mount's stderr); unmountDevice syncs first, retries a busy
 * unmount, and is idempotent (a mountpoint that is not a mount is fine). deviceProblem tells whether a
 * device found earlier has since vanished or shrunk (a pulled disk), from sysfs. Everything here
 * needs root.
 */
export * from './lsblk.js';
export * from './mountinfo.js';
export * from './device-mount.js';
export * from './devices.js';
export * from './device-health.js';
