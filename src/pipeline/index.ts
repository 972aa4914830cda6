/**
 * pipeline: the streaming flows over a datastore. Backup: read -> zero test -> SHA-256 -> dedup ->
 * zstd -> durable insert, in fixed 4 MiB chunks, CPU work on a pool of worker_threads (one per core),
 * I/O concurrency bounded by p-queue, and at most a small window of chunks in flight, so memory stays
 * flat whatever the disk size. Restore and verify run the same stages backwards (read -> CRC ->
 * decode -> SHA-256 check -> write), from a version source: a local datastore or another node's
 * (version-source.ts). Progress is reported through a listener (core/progress.ts).
 * Sync (sync/) copies the versions a datastore (a folder or a bucket) lacks from another one: a
 * folder, a bucket, or another node's datastore.
 */
export * from './worker-pool.js';
export { openVersion, type OpenedVersion } from './version-keys.js';
export * from './backup.js';
export * from './restore.js';
export * from './verify.js';
export * from './prune.js';
export * from './backup-disk.js';
export * from './benchmark.js';
export * from './base-record.js';
export * from './base-list.js';
export { DEFAULT_FULL_EVERY_DAYS, type DiskReadReport } from './changed-read.js';
export { SPACE_RESERVE, spaceGuard } from './space.js';
export { checkIndexDigest } from './restore-disk.js';
export type { BackupTarget, ChunkSink, HeldTarget, VersionWriter } from './backup-target.js';
export { LocalTarget } from './local-target.js';
export { RemoteTarget, type RemoteTargetOptions } from './remote-target.js';
export { S3Target } from './s3-target.js';
export { protectS3Version, pruneS3Guest, type S3PruneRequest } from './s3-prune.js';
export * from './sync/index.js';
export {
  localSource,
  openRemoteSource,
  remoteSource,
  sourceOf,
  s3Source,
  type ChunkSource,
  type SourceRef,
  type VersionLease,
  type VersionSource,
} from './version-source.js';
export { loadVersionKey, passphraseIn, readKeyFile } from './key-files.js';
export * from './export/index.js';
export * from './boot-test/index.js';
export * from './live-restore/index.js';
