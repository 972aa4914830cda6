/**
 * Where a backup writes its version: the port between the backup flow (backup.ts, backup-disk.ts) and
 * a datastore, so that one flow writes into a local folder (local-target.ts) or pushes into another
 * node's datastore over the remote datastore protocol (remote-target.ts, cluster mode). Both pass one
 * conformance suite (test/pipeline/backup-target-conformance.test.ts).
 *
 * The order every target keeps, and why a published version never misses a chunk:
 *  hold       before anything is read: the local target takes the guest lock, registers as a writer
 *             (the gc rule, datastore/gc.ts) and removes dead runs' staging; the remote one holds
 *             nothing yet (the node's upload does that at open) and asks nothing of the node
 *  open       once the guest's disks are frozen (the guest off, or its cold snapshots made), so an
 *             upload never idles out on the node while the guest shuts down: a staging folder and a
 *             version number (local), an upload (remote: the node locks the guest, registers the
 *             writer and refuses early when the new bytes do not fit)
 *  chunks     every chunk the version references is inserted, or found and touched, AFTER that
 *             registration: `touch` / `touchOrMissing` / `missing` mark a chunk used now and answer
 *             whether it is there; `insert` writes it durably (remote: the node checks it hashes to
 *             its name); `syncDirs` makes the inserts durable by name (remote: the node syncs at finish)
 *  files      the config, one index per disk (remote: the node checks every chunk an index names is
 *             there, and touches it), then, last, the log and the manifest
 *  publish    atomic: the staging folder renamed to the version (local), finish (remote: the node
 *             looks at every chunk once more, then renames); then the catalog and keep-N rotation
 *  discard    any failure before publish: nothing visible; what was inserted is unreferenced and the
 *             next gc collects it (remote: the upload is aborted, or the node's idle timeout does it)
 * A reused chunk gc removed in the one window inside a single touch is caught by `missing` before the
 * publish (backup-reuse.ts) and written again; on a node, finish catches it too (CHUNK_MISSING).
 */
import type { Manifest } from '../format/index.js';
import type { TaskLog } from '../core/index.js';
import type { SpaceDisk } from './space.js';
import type { ChunkCodec } from './worker-pool.js';

/** The chunk half of a target, as backup-disk.ts uses it. */
export interface ChunkSink {
  /** marks chunk `hex` used now; whether it is there */
  touch(hex: string): Promise<boolean>;
  /** touches those there; answers the others */
  touchOrMissing(hexes: Iterable<string>): Promise<string[]>;
  /** the ones not there (those there are touched: a last look before the publish) */
  missing(hexes: Iterable<string>): Promise<string[]>;
  /** stores the blob of chunk `hex` durably (under a temp name, then renamed) */
  insert(hex: string, blob: Uint8Array): Promise<void>;
  /** makes the inserts so far durable by name */
  syncDirs(): Promise<void>;
}

/** What the backup of one guest holds on the target from before its guest is frozen to the end. */
export interface HeldTarget {
  /** refuses early (NO_SPACE) when the disks' new data cannot fit, before the guest is stopped */
  checkSpace(disks: SpaceDisk[], pool: ChunkCodec, log: TaskLog): Promise<void>;
  /** a new version to write, once the disks are frozen; `bytesEstimate`: the disks' allocated bytes */
  open(bytesEstimate: number, log: TaskLog): Promise<VersionWriter>;
  release(): Promise<void>;
}

export interface VersionWriter {
  readonly version: number;
  /** where the version is being made, for the log (`'/mnt/usb/101/3'`, `datastore 'ring' on node pve1 (https://...)`) */
  readonly where: string;
  readonly chunks: ChunkSink;
  /** called before each new chunk is written with its blob's size; throws NO_SPACE before the target fills up */
  readonly beforeWrite?: (blobBytes: number) => Promise<void>;
  writeFile(name: string, data: Uint8Array | string): Promise<void>;
  /**
   * Writes the log and the manifest and publishes the version atomically; then the catalog and the
   * keep-N rotation. Answers the pruned versions and the version's folder (local only).
   */
  publish(manifest: Manifest, logText: string, log: TaskLog): Promise<{ pruned: number[]; dir?: string }>;
  /** after publish: the final log (local: rewritten in the version folder) */
  finalLog?(logText: string): Promise<void>;
  /** a named step, for the crash tests (local: the datastore's checkpoint hook) */
  checkpoint?(name: string): Promise<void>;
  /** before publish, any failure: nothing visible (best effort: what stays is collected later) */
  discard(): Promise<void>;
  /** bytes sent and received over the network for this version (remote only) */
  wire?(): { sentBytes: number; receivedBytes: number };
}

/** A datastore the backup of a guest can write to. */
export interface BackupTarget {
  /** the datastore, for messages */
  readonly label: string;
  /** the datastore's id, for cold-snapshot bases (none: no changed-extent reads against this target) */
  readonly datastoreId?: string;
  hold(guestId: string, lockWaitMs: number, keep: number | undefined): Promise<HeldTarget>;
}
