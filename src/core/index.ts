/**
 * core: the shared vocabulary of coldvault. Every other layer may import from here; core imports
 * nothing of ours. It holds typed errors (a stable `code` plus an ES2022 `cause`), guest ids, byte
 * units and their vzdump-style formatting, progress events, a guest's downtime, certificate fingerprints (pinning), loopback hosts, the logger port, and
 * the optional native addon (hole detection, buffer alignment for O_DIRECT).
 */
export * from './errors.js';
export * from './ids.js';
export * from './units.js';
export * from './log.js';
export * from './progress.js';
export * from './hypervisor.js';
export * from './aligned.js';
export * from './copy-bytes.js';
export { FIEMAP_EXTENT, loadNative, type FileExtent, type NativeAddon } from './native.js';
export * from './seams.js';
export * from './snapshots.js';
export * from './downtime.js';
export * from './fingerprint.js';
export * from './loopback.js';
