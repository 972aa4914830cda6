/**
 * Downtime: how long coldvault held a guest off for one backup in stop mode, and the log line that
 * says so. The job layer measures it (it stops and starts the guest); the pipeline writes it into the
 * version's manifest (`downtimeMs`) and its log when the job knows it by then.
 */
import { formatDuration } from './units.js';

/** Milliseconds; `offMs` is the whole time the guest was unavailable, the others are its parts. */
export interface Downtime {
  /** from the ACPI shutdown request until the start command returned */
  offMs: number;
  /** from the ACPI shutdown request until the guest was off (a hard stop after a timeout included) */
  shutdownMs: number;
  /** cold snapshots of the guest's disks; 0 without snapshots (then the disks are read while it is off) */
  snapshotMs: number;
  /** the start command, until the hypervisor had the guest running */
  startMs: number;
}

/** `11.2 s` from one second on, `0.02 s` below. */
function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms >= 1000 ? 1 : 2)} s`;
}

/** `guest 101 was off for 00:00:14 (shutdown 11.2 s, snapshot 0.02 s, start 2.9 s)` */
export function formatDowntime(guestId: string, d: Downtime): string {
  return (
    `guest ${guestId} was off for ${formatDuration(Math.round(d.offMs) / 1000)} ` + // the whole ms kept in manifest and task result
    `(shutdown ${seconds(d.shutdownMs)}, snapshot ${seconds(d.snapshotMs)}, start ${seconds(d.startMs)})`
  );
}

/** Whole milliseconds of the time off, as the manifest and catalog keep it; undefined for a value no clock gives. */
export function downtimeMillis(d: Downtime): number | undefined {
  return Number.isFinite(d.offMs) && d.offMs >= 0 ? Math.round(d.offMs) : undefined;
}
