/**
 * The target side of a sync, a port with two implementations: a folder datastore (folder-sink.ts)
 * and a datastore in an S3 bucket (s3-sink.ts). Each keeps its own store's rules for what makes a
 * version visible and why no prune or gc there loses a chunk under it (written down in each file).
 *
 * A run: `begin` (what the whole run holds), then per guest `holdGuest` (the guest's lock and what
 * else its rules need, dead runs' leftovers cleared) -> per version `startVersion` (the chunks the
 * store lacks) -> `storeChunk` for each of those (checked by the caller's `check` first) -> `confirm`
 * (the last look before the publish) -> `publish` (the version's files, manifest last) -> `rotate`
 * (keep-N) -> `release`; `end` after the last guest.
 */
import type { TaskLog } from '../../core/index.js';
import type { ReceivedCheck } from '../../datastore/index.js';
import type { Manifest } from '../../format/index.js';

export interface SyncSink {
  /** for messages and the result: the folder, or `s3://bucket/prefix/` */
  readonly dir: string;
  readonly datastoreId: string;
  readonly chunkSize: number;
  /** chunk writes worth keeping in flight (a bucket's PUTs wait a round trip each) */
  readonly writesInFlight: number;
  begin(purpose: string, lockWaitMs: number): Promise<void>;
  /** LOCKED when a backup or another sync holds the guest here (after `lockWaitMs`) */
  holdGuest(guestId: string, purpose: string, lockWaitMs: number, log: TaskLog): Promise<GuestSink>;
  end(): Promise<void>;
}

/** The version here as a plan compares it. */
export interface TargetVersions {
  /** the numbers of the guest's versions here, oldest first */
  numbers: number[];
  /** the highest number handed out here (numbers are never reused) */
  highest: number;
  manifestTime(version: number): Promise<string>;
}

export interface GuestSink extends TargetVersions {
  /** where version `version` lands, for the log */
  where(version: number): string;
  /** a version begins: the chunks of `digests` the store lacks (the others are kept for it: touched, or known) */
  startVersion(version: number, digests: readonly string[]): Promise<string[]>;
  /** stores a chunk blob once `check` passed it (CHUNK_FORGED otherwise, nothing stored); the blob as checked */
  storeChunk(hex: string, blob: Uint8Array, check: ReceivedCheck): Promise<Uint8Array>;
  /** the last look before the publish: the chunks of `digests` that are not there after all */
  confirm(digests: readonly string[]): Promise<string[]>;
  /** makes the version visible with these files (by name, the manifest among them, written last) */
  publish(version: number, files: ReadonlyMap<string, Buffer>, manifest: Manifest, digests: readonly string[], log: TaskLog): Promise<void>;
  /** the keep-N rotation of the guest here; the versions removed */
  rotate(keep: number, log: TaskLog): Promise<number[]>;
  release(): Promise<void>;
}
