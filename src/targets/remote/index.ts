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
 */
export { FingerprintMismatchError } from './handshake.js';
export { PinnedAgent, presentedFingerprint, type PinnedAgentOptions } from './pinned-agent.js';
export { pinnedFetch, type PinnedRequestInit } from './pinned-fetch.js';
