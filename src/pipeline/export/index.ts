/**
 * export: a version's disks served over NBD, read-only (issue 15): chunks fetched on demand from any
 * version source (a folder, a read-only external disk, a cluster node, an S3 bucket), verified before a
 * byte is served, kept in a small bounded cache; concurrent reads, structured replies with holes for
 * all-zero chunks. nbd-protocol.ts holds the wire format, nbd-connection.ts one client, version-disk.ts
 * the random-access reads of a disk, export-server.ts the listener and the version's lease.
 */
export { DEFAULT_CACHE_CHUNKS, startExport, type ExportRequest, type RunningExport } from './export-server.js';
export type { DiskTrouble } from './version-disk.js';
