/**
 * live-restore: restore-on-the-fly (issue 15), for guests coldvault starts itself with QEMU (the
 * qemu driver). The guest runs at once on qcow2 overlays over the version's NBD export while QEMU
 * mirrors each disk to its final volume, then pivots onto it. live-restore.ts starts it,
 * live-complete.ts copies and publishes, live-resume.ts finishes one whose process died,
 * live-journal.ts records what that needs, live-volumes.ts makes the files, mirror.ts speaks QMP.
 */
export { pendingLiveRestores, readJournal as readLiveJournal, resumeCommand, type LiveJournal } from './live-journal.js';
export { resumeLiveRestore, type ResumeLiveRequest } from './live-resume.js';
export { restoreGuestLive, type LiveRestoreRequest, type LiveRestoreResult } from './live-restore.js';
