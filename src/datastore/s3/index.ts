/**
 * s3: a coldvault datastore in an S3 bucket (Ceph RGW, MinIO, AWS S3...) under a prefix: the same
 * format as a folder store, object for file, without rename, fsync or file times.
 *
 * Layout (keys under PREFIX, as a folder store's paths):
 *   coldvault-datastore.json          identity (format, id, creation time, chunk size)
 *   chunks/<4 hex>/<64 hex>           chunk blobs, named by the SHA-256 of their bytes (HMAC when encrypted)
 *   guests/<vmid>/<version>/...       a version's files: <disk>.fidx indexes, qemu-server.conf, backup.log,
 *                                     and manifest.json, written LAST: a version exists when its manifest does
 *   guests/<vmid>/last-version        the highest version number handed out (numbers are never reused)
 *   locks/<name>/<uuid>.json          lock objects (s3-locks.ts): `writers` (every running backup),
 *                                     `guest-<vmid>` (one backup per guest), `gc` (a running gc)
 *   quarantine/<hex>.<ms>, heal/<hex> verify's: a damaged chunk's bytes, and chunks the next backup uploads afresh (s3-chunks.ts)
 * Beside the catalog cache: this machine's known-chunk cache (s3-known-cache.ts, trusted per gc generation).
 * The catalog is a local SQLite cache in the state dir, rebuilt from a listing of the manifests.
 *
 * Publish rule (crash-safety): a backup PUTs every chunk its indexes name that is not known to be
 * stored, then the indexes, config and log; a PUT that answered 200 is durable. Only then does it PUT
 * the manifest. Killed (either side) before that answer: no manifest, nothing visible; the next backup
 * of the guest deletes the dead run's files (it holds the guest lock), gc the unreferenced chunks.
 *
 * Why no interleaving of backup, prune and gc loses a referenced chunk (the folder store's gc race is
 * the lesson: there a backup touches each reused chunk, which S3 cannot do cheaply):
 *  1. A backup registers as a writer (a lock object under locks/writers/) BEFORE it reads any index it
 *     dedups against, and keeps it refreshed until its manifest is stored or it gave up.
 *  2. gc takes locks/gc/ and then lists locks/writers/; it goes on only when no writer is fresh, and
 *     a writer that registers later sees the fresh gc lock and waits (s3-locks.ts: each PUTs before it
 *     LISTs, so at least one of the two sees the other). So gc's mark and sweep never overlap a backup.
 *  3. So every chunk a backup reuses belonged to a version published before the backup registered
 *     and was not swept before then (gc only sweeps what no manifest names at its mark), or was
 *     stored by the backup itself. Prune only deletes manifests and version files, never chunks:
 *     a chunk of a pruned version stays until a gc that can only run after the backup is done, when
 *     the new manifest names it.
 *  4. Dead holders: a lock object not refreshed for an hour (the service's LastModified) is ignored;
 *     one naming this host and boot and a dead pid at once. A holder that was frozen past that hour
 *     and wakes must not act: the manifest PUT (and each gc delete) runs in `actWithin`, which first
 *     re-PUTs the holder's lock and fails with LOCKED when another holds it, and aborts the act after
 *     5 minutes; S3 refuses a request signed more than 15 minutes (plus this machine's clock error,
 *     at most 15 more) before it arrives. So an act lands within 50 minutes of its holder's last
 *     refresh, before anyone may treat the lock as dead.
 *  5. Listings are strongly consistent (AWS S3 since December 2020, Ceph RGW within one site): a
 *     lock or manifest PUT that answered is in every later listing. A multi-site RGW with async
 *     replication is not: keep one datastore to one site.
 */
export { S3Datastore } from './s3-datastore.js';
export { S3ChunkStore } from './s3-chunks.js';
export { S3Locks, type HeldS3Lock, type AcquireRequest, STALE_MS, ACT_MS, REFRESH_MS } from './s3-locks.js';
export { S3Keys, isS3Url, parseS3Url, type S3StoreSettings } from './s3-location.js';
export { collectS3Garbage, gcGeneration, type S3GcResult } from './s3-gc.js';
export { CHUNKS_UNTIL_META, GENERATION_DAYS, retained, retentionPlan, type RetentionPlan } from './s3-retention.js';
export { removeAllVersions } from './s3-datastore.js';
export { undeleteRetained, type Undeleted } from './s3-undelete.js';
export { loadKnownChunks, saveKnownChunks, MAX_KNOWN, type LoadedCache } from './s3-known-cache.js';
