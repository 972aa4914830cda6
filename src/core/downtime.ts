/**
 * How long coldvault held a guest off during one backup, as the job layer measured it: from the
 * shutdown request until the guest ran again, and its parts (snapshotMs is 0 without cold snapshots,
 * where the guest stays off while its disks are read).
 */
export interface Downtime {
  offMs: number;
  shutdownMs: number;
  snapshotMs: number;
  startMs: number;
}
