/**
 * uploads: the server side of the remote datastore protocol's writer half (API v1, cluster mode).
 * One upload is one new version of one guest, pushed by another node into a configured datastore, a
 * folder or an S3 bucket, through the receiving store port (receiving.ts). The steps, as on a folder
 * (receiving-folder.ts; an S3 datastore does them as a local backup into the bucket does, with no
 * space check and no touch: receiving-s3.ts says how, and why no published version misses a chunk):
 *   open (POST .../uploads)       guest lock `guest-<id>` (LOCKED when busy), writer registration,
 *                                 stale staging of dead writers removed, staging folder, the version
 *                                 number reserved; NO_SPACE early when the estimate does not fit
 *   known (POST .../known)        the sender's dedup question: chunks present are touched, the rest
 *                                 answered missing
 *   chunk (PUT .../chunks/<hex>)  a blob as the datastore stores it; stored only when it decodes to
 *                                 bytes hashing to its name (CHUNK_FORGED), space guard per write
 *   file (PUT .../files/<name>)   the guest config, the log, `<disk>.fidx`; an index must decode and
 *                                 every chunk it names must be in the store (CHUNK_MISSING), touched
 *   finish (POST .../finish)      manifest checked (schema, the upload's guest, version and node, the
 *                                 config and each index against it), every chunk looked at again,
 *                                 manifest written, staging renamed to the version (atomic), catalog,
 *                                 keep-N rotation
 *   abort (DELETE), idle timeout (uploadIdleSeconds, default 300), server shutdown: staging removed,
 *                                 lock and registration released, nothing visible
 * Files: registry.ts (open uploads, who may use them), upload.ts (one upload: concurrency, idle
 * clock, byte counts), files.ts (names, limits, the index check), version-check.ts (finish's checks),
 * publish.ts (the last look, the publish, catalog and rotation), receiving.ts (the port),
 * receiving-folder.ts and receiving-s3.ts (its two stores), open-receiving.ts (which one).
 *
 * Why a published remote version on a folder never misses a chunk, also with gc and prune running on the server
 * (the gc rule, datastore/gc.ts: every chunk a version references is written or touched by its backup
 * after that backup registered as a writer; an upload is such a backup):
 *  1. The writer registration is made at open, before any chunk is looked at, and released only after
 *     the publish. Every chunk the version references got a time after it: a chunk sent is written
 *     with the time of its write before its name appears; a chunk the store had is touched, by
 *     `known` and again by the PUT of the index that names it (an index whose chunks are not all
 *     there, touched, is refused), so a chunk the sender never asked about is covered too.
 *  2. So any gc either marks the version (published before gc listed it) or runs while the upload is
 *     registered: its cutoff is before the registration, or its start before the chunk times; it
 *     removes none of them however long it is paused (gc.ts's argument, unchanged).
 *  3. gc moving a chunk aside while `known` asks: the touch misses (answered missing), the sender
 *     sends it, it is written afresh. The one window inside a single touch (gc deletes the inode the
 *     touch lands on) is closed by finish: after syncing the chunk folders it looks at every chunk
 *     of every index once more, and a missing one is CHUNK_MISSING, nothing published; the sender
 *     sends it and finishes again (a refused finish leaves the upload open).
 *  4. Prune removes only published versions; the version being pushed is not visible until the
 *     rename, and the keep-N rotation runs after it, under the guest's retention lock. A chunk that
 *     prune unreferenced and the upload touched is covered by 1 and 2.
 *  5. A version is whole or absent: every file of it is written durably into the staging folder, the
 *     chunk folders are synced, then the folder is renamed and the guest folder synced (versions.ts).
 * What an upload that ends without finish leaves (disconnect, timeout, kill -9 of either side, a
 * power cut): no version; a staging folder (removed at once by abort and timeout; after a crash its
 * `.owner` names a dead process, and cleanupStale removes it at the next upload or backup of that
 * guest); a stale guest lock and writer registration (taken over, dropped); the chunks it sent,
 * unreferenced, which the next gc removes once they are older than its cutoff; its task, failed.
 * Nothing a sender sends is trusted: chunks are checked against their names before they are stored,
 * so no sender can change the bytes of a chunk other versions share.
 */
export { UploadRegistry, type Asker, type OpenRequest, type RegistryOptions } from './registry.js';
export { receivingStores, type ReceivingOptions } from './open-receiving.js';
export type { HoldRequest, ReceivingStore } from './receiving.js';
export { Upload, type UploadEnd, type UploadInfo, type UploadStats } from './upload.js';
export { fileKind, fileLimit, MAX_INDEX_BYTES, PUSHED_FILE_PATTERN, VERSION_FILE_PATTERN } from './files.js';
