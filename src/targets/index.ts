/**
 * targets: where a datastore lives. The external device (a USB disk, or in tests a loop device):
 * discovery of attached block devices, and the mount lifecycle of one device. And another node
 * (remote/): HTTPS to its `coldvault serve`, its certificate pinned by fingerprint.
 *
 * Vocabulary:
 * - block device: one row of `lsblk` (a disk, a partition, a loop device), with its filesystem,
 *   label and UUID; `BlockDevice` in lsblk.ts. Where udev is absent (containers), lsblk leaves the
 *   filesystem fields empty, so they are filled by a low-level `blkid -p` probe.
 * - device spec: how a user names a device: `/dev/sdb1`, `UUID=...`, `LABEL=...` (resolveDevice).
 * - identity: the datastore id in `coldvault-datastore.json` at the filesystem's root; a job is
 *   bound to one id, so a wrong disk is recognised before anything is written (checkIdentity).
 * - probe: a look at whose datastore a disk holds: mounted read-only in a private temp dir for a
 *   moment (withReadOnlyMount).
 *
 * Discovery: listCandidates (lsblk -> flatten the tree -> unmounted filesystems of removable /
 * hotplug / USB devices; `all`: also loop devices and fixed disks) mounts nothing; listDevices also
 * probes each candidate, one at a time, always unmounting.
 *
 * Contracts of mounting (device-mount.ts): every mount is nosuid,nodev,noexec, checked in
 * mountinfo; exFAT and NTFS are mounted owned by root, 0600 / 0700 (mount-options.ts). A read-only
 * mount (restore, probe, a job's first look) never changes the disk: no journal replay (ext4 `noload`,
 * xfs `norecovery`; ntfs-3g never replays) and the block device is read-only while mounted
 * (read-only-device.ts). mountDevice refuses a device mounted elsewhere and a folder that is a
 * datastore in use (mountpoint-guard.ts) with DEVICE_MOUNT_FAILED naming the folder and why, and
 * a read-write mount of a read-only device; unmountDevice syncs first, retries a busy unmount, puts
 * the device's read-only flag back, and is idempotent (a mountpoint that is not a mount is fine).
 * deviceProblem tells whether a device found earlier has since vanished or shrunk (a pulled disk),
 * from sysfs. Everything here needs root.
 */
export * from './lsblk.js';
export * from './mountinfo.js';
export * from './identity.js';
export * from './mount-options.js';
export * from './read-only-device.js';
export * from './device-mount.js';
export * from './devices.js';
export * from './device-health.js';
export * from './journal-state.js';
export * from './remote/index.js';
export * from './s3/index.js';
