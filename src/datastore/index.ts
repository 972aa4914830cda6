/**
 * datastore: a coldvault datastore on a directory (a local folder, a mounted USB disk, a remote mount).
 *
 * Layout (format 1):
 *   coldvault-datastore.json        identity: format, id, creation time, chunk size
 *   chunks/<4 hex>/<64 hex>         chunk blobs, named by the SHA-256 of their plain bytes
 *   guests/<vmid>/<version>/        one folder per version: manifest.json, <disk>.fidx, qemu-server.conf, backup.log
 *   guests/<vmid>/.staging-*        a version being written; renamed to <version> when complete and durable
 *   quarantine/                     chunks that failed verification, moved aside (the next backup writes them afresh)
 *   locks/                          per-guest backup locks and the registry of running writers (for GC)
 *   catalog.sqlite                  the SQLite catalog (an index, rebuildable from the files above)
 *
 * Modes: every file is created 0600 and every folder 0700 (private to the owner, whatever the umask);
 * `checkPrivate` (privacy.ts) finds what others may read, for verify and serve to warn about.
 *
 * Received chunks: a blob pushed by another node is stored only when its content hashes to its name
 * (received.ts, ChunkStore.insertReceived); nothing that others send is trusted.
 *
 * Durability: every file is written to a temp name, fsynced, renamed, and its directory fsynced;
 * a version's folder is renamed into place only after all its chunks, indexes and manifest are durable.
 */
export * from './store.js';
export * from './chunks.js';
export * from './versions.js';
export * from './locks.js';
export * from './durable.js';
export * from './gc.js';
export * from './version-use.js';
export { holderAlive, processAlive, thisBoot, thisHost } from './pid.js';
export * from './prune-policy.js';
export * from './privacy.js';
export { checkReceivedBlob, type ReceivedCheck } from './received.js';
export * from './s3/index.js';
