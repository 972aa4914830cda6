/**
 * jobs: backup jobs of stopped guests, as the seed's "Backup -> Jobs" screen has them. A job (weekdays +
 * start time or a cron expression, guests or "all but", target store, keep N, scripts, mail) runs as a
 * task: [lock: backup] -> stop guest (ACPI) -> cold snapshot of the disks -> start guest -> back up the
 * snapshots -> unlock (without snapshots: stop -> back up -> still stopped? -> start), with vzdump's hook phases, a restart journal that brings guests back and removes their backup locks after
 * a crash, per-guest locks, task logs in SQLite and files, and a mail report.
 * State lives in `<stateDir>/coldvault.sqlite`. The scheduler (in `coldvault serve`) starts due jobs.
 * overview/: the operator's view computed from all of that (guest states and flags, usage and "full on"
 * forecast, run history, disk rotation; GET /api/v1/overview).
 */
export * from './job-model.js';
export * from './schedule/index.js';
export * from './state-db.js';
export * from './job-store.js';
export * from './task-store.js';
export * from './journal.js';
export * from './hooks.js';
export * from './runner.js';
export * from './scheduler.js';
export * from './mail.js';
export * from './notify/index.js';
export { jobView, type JobView } from './job-view.js';
export * from './device-sightings.js';
export * from './disk-discovery.js';
export { type KeyOpening, loadJobKey, loadKeySetting, PASSPHRASE_ENV } from './job-key.js';
export { GuestSnapshots, snapshotGuestDisks, type SnapshotMode } from './cold-snapshots.js';
export { removeLeftoverSnapshots, type LeftoverScope } from './snapshot-leftovers.js';
export { describeLanding, jobLanding, type JobLanding } from './job-target.js';
export { bindDevice, mountStoreDevice, type MountedStoreDevice, type StoreDeviceRequest } from './device.js';
export { clusterStatus, type ClusterStatus, type NodeStatus } from './cluster-status.js';
export { bootTestReports, DEFAULT_JOB_BOOT_TIMEOUT_SECONDS, type BootTestSettings } from './boot-tests.js';
export { DOCTOR_CHECKS, runDoctor, type DoctorCheck, type DoctorReport, type DoctorSetup, type Finding, type FindingStatus } from './doctor/index.js';
export { failFinding, okFinding, warnFinding } from './doctor/index.js';
export * from './overview/index.js';
export { attachedLine, parseAttachedLine, type AttachedDisk } from './device.js';
