/**
 * guests/snapshots: cold snapshots of a guest's disks, the providers behind the port in
 * core/snapshots.ts. A cold snapshot is made while the guest is off; the guest then runs again and
 * the backup reads the snapshot, which holds the disk exactly as the guest left it at shutdown.
 *
 * - `reflink` (reflink.ts): a reflink clone (FICLONE) of a disk file on XFS (made with reflink=1)
 *   or btrfs, in `<storage dir>/.coldvault-snapshots/<vmid>/<disk key>.<tag>` (place.ts), instant and
 *   free until the guest rewrites blocks. ext4, tmpfs, NTFS and block devices are refused with a
 *   reason (probe.ts asks each filesystem once, with a tiny clone).
 * - LVM-thin (`lvcreate -s` of a thin LV) and ZFS zvol snapshots would be further providers in
 *   registry.ts; not shipped: this kernel has no device-mapper to test them on.
 *
 * `snapshotProviderFor` picks the first provider that accepts a disk. Tags: `run-<pid>-<boot id>`
 * while a run owns a snapshot, `base-<datastore id>` once kept as a base (core/snapshots.ts).
 */
export { ReflinkProvider, type ReflinkOptions } from './reflink.js';
export { snapshotProviderFor, snapshotProviders, type ProviderChoice } from './registry.js';
export { SNAPSHOT_FOLDER, parseSnapshotName } from './place.js';
