/**
 * remote: the client side of talking to another node's `coldvault serve` over HTTPS, trusting its
 * certificate by pinning, as Proxmox Backup Server remotes do: the node's SHA-256 certificate
 * fingerprint (`coldvault cert fingerprint` on that node, `cluster.nodes[].fingerprint` here) is the
 * trust; no CA and no host name are checked, so a self-signed certificate on an IP address works.
 *
 * Vocabulary: a *pinned agent* (PinnedAgent) is the keep-alive connection pool to one node; every new
 * connection is checked (handshake.ts, constant-time compare) before a request byte is written, so
 * a token never reaches another server. pinnedFetch sends one request through it and answers a
 * standard Response. presentedFingerprint shows what a node presents, trusting nothing.
 *
 * Errors (stable codes): FINGERPRINT_MISMATCH (FingerprintMismatchError, naming the URL, the expected
 * and the presented fingerprint; permanent), TLS_FAILED (handshake; permanent until the node is
 * fixed), CONNECTION_FAILED (refused, unreachable, reset, timed out: may pass, worth a retry),
 * ABORTED (the caller's signal).
 *
 * RemoteStore (store-client.ts) is the typed client of another node's datastore (the remote datastore
 * protocol, API v1): the writer half (openUpload -> RemoteUpload: known, putChunk, putFile, finish,
 * abort) and the reader half (listVersions, getFile / getManifest / getIndex, getChunk, readChunkInto).
 * Under it: store-options.ts (the URL rule: https with a pinned fingerprint, plain http only to
 * loopback), wire.ts (requests in flight bounded, keep-alive, retries of idempotent calls only,
 * bodies metered by the bandwidth limit, bytes on the wire counted), token-bucket.ts (`bwlimit`),
 * remote-errors.ts (a node's `{error: {code, message}}` -> RemoteError naming the node, the store and
 * the reason: REMOTE_UNAUTHORIZED 401, REMOTE_FORBIDDEN 403, REMOTE_NOT_FOUND 404, REMOTE_REFUSED other
 * 4xx, REMOTE_FAILED 5xx; the protocol's own codes LOCKED, NO_SPACE, CHUNK_MISSING, CHUNK_FORGED,
 * UPLOAD_NOT_FOUND, UPLOAD_EXPIRED, VERSION_NOT_FOUND, MANIFEST_INVALID, INDEX_INVALID kept), and
 * chunk-check.ts (a chunk read from a node is checked as one read from a disk: CHUNK_CORRUPT).
 * store-device.ts: a job's external disk at the receiving node (attachDevice, kept attached by a
 * keep-alive, detachDevice); the node's DEVICE_* and WRONG_DATASTORE codes are kept.
 * direct-requests.ts / direct-connection.ts / http-answer.ts: the Wire's requests go over connections of
 * their own whose socket reads an answer's body straight into its destination (`onread`), with a
 * small HTTP/1.1 answer parser, instead of node:https's Buffer, parser callback and stream event per
 * 16 KiB TLS record (a remote restore's CPU; see direct-connection.ts).
 * store-lease.ts: a read lease on a version the node holds against prune while this process restores
 * or verifies it (leaseVersion, kept by a keep-alive, release); LEASE_NOT_FOUND kept.
 */
export { FingerprintMismatchError } from './handshake.js';
export { PinnedAgent, presentedFingerprint, type PinnedAgentOptions } from './pinned-agent.js';
export { pinnedFetch, type PinnedRequestInit } from './pinned-fetch.js';
export { RemoteStore, type OpenUploadRequest, type RemoteVersion } from './store-client.js';
export type { AttachDeviceRequest, AttachedRemoteDevice } from './store-device.js';
export type { RemoteLease } from './store-lease.js';
export { KNOWN_BATCH_MAX, RemoteUpload, type UploadStats } from './store-upload.js';
export type { RemoteStoreOptions, RemoteStoreTimeouts } from './store-options.js';
export { RemoteError } from './remote-errors.js';
export { AnswerSyntaxError, ChunkedBody, parseHead, type AnswerHead } from './http-answer.js';
export { checkChunkBlob, chunkScratch } from './chunk-check.js';
export { MIB_PER_SECOND, SLICE_BYTES, systemBucketClock, TokenBucket, type BucketClock, type BucketStats } from './token-bucket.js';
export type { RetryPolicy, WireStats } from './wire.js';
export {
  checkClusterConfig,
  clusterNode,
  clusterTimeouts,
  ringStoreOptions,
  remoteStoreOptions,
  ringPlace,
  type ClusterConfig,
  type ClusterNodeConfig,
  type RingPlace,
} from './cluster.js';
