/**
 * sync: pulls the versions a local datastore lacks from a datastore on another node (Proxmox Backup
 * Server's "sync jobs"), deduplicated and verified, e.g. onto the USB disk that is carried away.
 * `coldvault sync --from NODE:STORE --to STORE` and sync jobs (jobs/sync-run.ts) drive it.
 *
 * Vocabulary: the *node* serves the source datastore (the reader half of the remote datastore
 * protocol, targets/remote RemoteStore); the *store* is the local target. A version keeps its number
 * and its files byte for byte (manifest, config, log, indexes); chunks are stored as the node's blobs.
 * plan.ts decides per guest (present, conflict, older, keep, pull), version.ts pulls one version,
 * chunks.ts fetches and checks chunks, run.ts walks the guests.
 *
 * Trust: nothing the node sends is taken unchecked: the manifest's checksum and schema, its guest and
 * number, the config against the manifest, each index against the manifest (size, disk SHA-256 over
 * its digests), and each chunk blob (CRC, decode, SHA-256 against its name: ChunkStore.insertReceived)
 * before it is stored. Nothing here is overwritten: a number that is here is never written again.
 *
 * Crash safety: a version becomes visible only when everything it references is durable.
 *  1. Every chunk is written durably under a temp name and renamed (ChunkStore.insert); the chunk
 *     folders are fsynced (syncDirs) before the publish; every chunk is then looked at once more.
 *  2. The version's files are written fsynced into a staging folder (`.staging-*` with an `.owner`),
 *     the manifest last; publish fsyncs it, renames it to the number and fsyncs the guest folder.
 *  So a sync killed (kill -9, power cut, the node gone) at any point leaves no version, or a whole
 *  one: a staging folder that cleanupStale removes at the next sync or backup of that guest, a stale
 *  guest lock and writer registration (their process is dead: taken over, dropped), and chunks no
 *  version references, which gc collects.
 * Why no interleaving with local prune and gc loses a chunk (the gc rule of datastore/gc.ts, which a
 * sync follows as a backup or an upload does): the writer registration is made under the guest lock
 * before any chunk is looked at and released after the publish; every chunk of the version gets a
 * time after it (a present chunk is touched, a fetched one is written then). A gc either marks the
 * version (published before it listed) or runs while the sync is registered, and then its cutoff is
 * before every one of those times. The one window inside a single touch (gc deletes the inode the
 * touch lands on) is closed by the last look of 1: a chunk gone is fetched again before the publish.
 * Prune removes only published versions and the version pulled is invisible until its rename; the
 * keep-N rotation runs after it under the guest's retention lock.
 */
export { syncStore, type SyncRequest, type SyncResult, type SyncedGuest } from './run.js';
export type { SkipReason } from './plan.js';
export type { ChunkCounters } from './chunks.js';
export { parseSyncSource, type SyncSource } from './source.js';
