/**
 * sync: copies the versions a datastore lacks from another datastore (Proxmox Backup Server's "sync
 * jobs"), deduplicated and verified: from a datastore on another node onto the USB disk that is
 * carried away, from a local disk into a bucket (the offsite copy), from a bucket back onto a disk.
 * `coldvault sync --from SOURCE --to TARGET` and sync jobs (jobs/sync-run.ts) drive it.
 *
 * Vocabulary: the *source* (pull-source.ts) is a datastore on another node (the reader half of the
 * remote datastore protocol, targets/remote RemoteStore), a folder datastore or an S3 datastore, read
 * through the version source port; the *target* (sink.ts) is a folder datastore (folder-sink.ts) or
 * an S3 datastore (s3-sink.ts). source.ts is the syntax that names either side. A version keeps its
 * number and its files byte for byte (manifest, config, log, indexes); chunks are stored as the
 * source's blobs. plan.ts decides per guest (present, conflict, older, keep, pull), version.ts copies
 * one version, chunks.ts fetches and checks chunks, run.ts walks the guests.
 *
 * Trust: nothing a source gives is taken unchecked: the manifest's checksum and schema, its guest and
 * number, the config against the manifest, each index against the manifest (size, disk SHA-256 over
 * its digests), and each chunk blob (CRC, decode, SHA-256 against its name; an encrypted one CRC and
 * size: datastore/received.ts) before it is stored. Nothing at the target is overwritten: a number
 * that is there is never written again.
 *
 * Crash safety and why no prune or gc at the target loses a chunk under a sync: each target's own
 * argument, in folder-sink.ts and s3-sink.ts. A folder or bucket source holds a read lease on each
 * version it copies, so a prune there keeps it (and its chunks) until the copy is done.
 */
export { syncStore, type SyncRequest, type SyncResult, type SyncedGuest } from './run.js';
export type { SkipReason } from './plan.js';
export type { ChunkCounters } from './chunks.js';
export { parseSyncSource, SYNC_SOURCE_FORMS, type SyncSource } from './source.js';
export { bucketSource, folderSource, nodeSource, type PullSource, type SourceVersion } from './pull-source.js';
export type { GuestSink, SyncSink, TargetVersions } from './sink.js';
export { FolderSink } from './folder-sink.js';
export { S3Sink } from './s3-sink.js';
