/** The catalog's public vocabulary: what a row looks like to the engine, and what the catalog reads. */
import type { DatastoreReader } from '../datastore/index.js';

/**
 * The last verify's verdict: `failed` = damage found (a chunk or file wrong or missing);
 * `incomplete` = something could not be read (I/O errors: trouble with the disk, not damage), so the
 * version was not fully checked.
 */
export type VerifyState = 'unverified' | 'ok' | 'failed' | 'incomplete';

export interface CatalogDisk {
  key: string;
  volume: string;
  format: string;
  size: number;
  sha256: string;
  zeroBytes: number;
  chunkCount: number;
  zeroChunks: number;
}

export interface CatalogVersion {
  guestId: string;
  version: number;
  time: string;
  name: string;
  node: string;
  disks: CatalogDisk[];
  /** sum of the disks' sizes */
  logicalBytes: number;
  zeroBytes: number;
  /** from the manifest: plain bytes of the chunks this version added to the store */
  newBytes: number;
  /** from the manifest: bytes this version newly wrote to the store (after compression) */
  storedBytes: number;
  chunkCount: number;
  /** from the manifest: milliseconds the guest was off for this backup; null when it has none */
  downtimeMs: number | null;
  /** the key an encrypted version was made with (its fingerprint), null when not encrypted */
  keyFingerprint: string | null;
  verifyState: VerifyState;
  verifiedAt: string | null;
  verifyDetail: string | null;
  protected: boolean;
  /** the last boot test (`coldvault boot-test`), null when never tested (or since the catalog's last rebuild) */
  bootTest: BootTestRecord | null;
}

/** How the last boot test of a version went. */
export interface BootTestRecord {
  ok: boolean;
  /** seconds from the guest's start to its signal (passed), or until the test gave up (failed) */
  seconds: number;
  /** the signal waited for: `serial /REGEX/`, `guest-agent`, `script PATH` */
  signal: string;
  /** when the test ended (ISO 8601) */
  at: string;
  /** why it failed (or what matched), one line */
  detail: string | null;
}

/** Also in the Manifest (`newBytes`, `storedBytes`); the catalog takes them from there. */
export interface CatalogVersionStats {
  newBytes: number;
  storedBytes: number;
}

/** A version whose manifest could not be read or decoded during a rebuild or reconcile. */
export interface SkippedVersion {
  guestId: string;
  version: number;
  error: string;
}

export interface RebuildResult {
  versions: number;
  guests: number;
  skipped: SkippedVersion[];
}

export interface ReconcileResult {
  added: number;
  removed: number;
  skipped: SkippedVersion[];
}

export interface StoreTotals {
  versions: number;
  logicalBytes: number;
  storedBytes: number;
}

/**
 * What the catalog reads: the datastore reader, plus an optional probe for the `protected` file in a
 * version folder (the truth for that flag). Every DatastoreReader is a CatalogReader.
 */
export type CatalogReader = DatastoreReader & {
  isProtected?(guestId: string, version: number): Promise<boolean>;
};
