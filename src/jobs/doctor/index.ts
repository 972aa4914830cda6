/**
 * doctor: `coldvault doctor` looks at a node's setup and says what needs fixing before tonight's
 * backups fail: the state dir, the guests dir and storages, each datastore (folder: there, a
 * coldvault datastore, writable; S3: readable with its credentials), free space, the hypervisor
 * driver (QMP sockets, `qm`, `virsh`), the mail server (EHLO, nothing sent), the cluster ring, and the
 * clock (not behind coldvault's own records, in step with the services it talks to).
 *
 * Vocabulary: a *check* (DoctorCheck) answers *findings*; a finding is ok, warn (worth a look) or
 * fail (something will fail until it is fixed), says what was found and, when not ok, what to do.
 * The checks get a DoctorSetup (the config as loaded, the state database's jobs and tasks) and
 * change nothing, but for a temp file they write and remove to see that a folder takes one.
 * DOCTOR_CHECKS (registry.ts) is the list they are run from, all at once, each under a time limit.
 */
export { DOCTOR_CHECKS, runDoctor, type DoctorReport } from './registry.js';
export type { DoctorCheck, DoctorSetup, Finding, FindingStatus } from './types.js';
export { fail as failFinding, ok as okFinding, warn as warnFinding } from './types.js';
