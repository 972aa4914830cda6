/**
 * The cold-snapshot port: a frozen copy of a guest's disk, made while the guest is off, that the
 * backup reads after the guest runs again (issue 11). Providers live in guests/snapshots/ (reflink
 * clones now; LVM-thin and ZFS zvol snapshots later); the job runner and the pipeline only see this.
 *
 * Vocabulary: the *source* is the disk as the guest uses it; a *snapshot* is a provider's copy of it at
 * one moment, readable as a file or block device at `path`, holding exactly the bytes the source held
 * when it was made; a *base* is the snapshot a backup keeps after its version is published, so that the
 * next backup can compare extent maps with it and read only what changed.
 *
 * Contracts:
 * - `refusal` never changes anything; it says why a source cannot be snapshotted by this provider
 *   (another filesystem, no reflink support, a block device, ...), or undefined when it can.
 * - `create` is called only while the guest is off. It makes the snapshot whole or not at all (a
 *   failed create leaves nothing), in a place the provider owns, on the same filesystem or volume group
 *   as the source, named so that no hypervisor tool mistakes it for a guest disk.
 * - `remove` is idempotent (a snapshot already gone resolves).
 * - `list` finds every snapshot the provider holds of the given sources, whatever its tag; the caller
 *   tells leftovers (a run that died after its snapshot) from live ones by the tag.
 * Snapshots are named by guest, disk key and a tag: `run-<pid>-<boot id>` while a run owns it (so a
 * leftover of a dead run is recognised, also after a reboot), `base-<datastore id>` once kept as the
 * base for one datastore (each datastore, e.g. each rotated USB disk, has its own base).
 */
export interface SnapshotSource {
  guestId: string;
  /** the disk's key in the guest config, e.g. `scsi0` */
  key: string;
  /** the real path of the source (a file, or a block device) */
  path: string;
}

export interface ColdSnapshot extends SnapshotSource {
  /** which provider made it (`reflink`, later `lvm-thin`, `zfs`) */
  provider: string;
  /** where the snapshot is readable */
  snapshotPath: string;
  /** `run-<pid>-<boot id>` while a run owns it; `base-<datastore id>` when kept as a base */
  tag: string;
  /** when it was made (ms since the epoch) */
  created: number;
}

export interface SnapshotProvider {
  readonly name: string;
  refusal(source: SnapshotSource): Promise<string | undefined>;
  create(source: SnapshotSource, tag: string): Promise<ColdSnapshot>;
  /** renames a snapshot to another tag (a run's snapshot becoming the base), replacing one there */
  retag(snapshot: ColdSnapshot, tag: string): Promise<ColdSnapshot>;
  remove(snapshot: ColdSnapshot): Promise<void>;
  /** every snapshot this provider holds of a guest's disks (whatever the tag) */
  list(guestId: string, sources: SnapshotSource[]): Promise<ColdSnapshot[]>;
}
