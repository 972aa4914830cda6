/**
 * Manifest: `manifest.json` of a version folder, the record of one backed-up guest version.
 * JSON so that an admin can read it with `cat`; it carries its own SHA-256 (`checksum`, over the
 * canonical JSON without that field) so that a damaged manifest is detected, not trusted; and it is
 * checked against a strict schema (manifest-schema.ts), so that a manifest someone wrote with a valid
 * checksum cannot smuggle in a path (`index: "../../etc/x"`), a negative size or an unknown field.
 */
import { createHash } from 'node:crypto';
import { ColdvaultError } from '../core/index.js';
import { DATASTORE_FORMAT } from './constants.js';
import { checkManifestSchema, SchemaViolation } from './manifest-schema.js';
import type { ManifestEncryption } from './sealed-manifest.js';

export interface ManifestDisk {
  /** config key, e.g. `scsi0` */
  key: string;
  /** the volume as the config named it, e.g. `local:101/vm-101-disk-0.qcow2` */
  volume: string;
  /** storage id of the volume, or null for an absolute path */
  storage: string | null;
  /** image format of the file: `raw` or `qcow2` (a qcow2 file is backed up as the file it is) */
  format: string;
  /** bytes of the image file */
  size: number;
  /** file name of the fixed index in the version folder: `<key>.fidx`; never a path (no '/', '\\', '..') */
  index: string;
  /** disk digest: SHA-256 over the chunk SHA-256s, see format/digest.ts */
  sha256: string;
  chunkSize: number;
  /** ceil(size / chunkSize) */
  chunkCount: number;
  /** chunks that are all zero (nothing stored); at most chunkCount */
  zeroChunks: number;
  /** at most size */
  zeroBytes: number;
}

export interface Manifest {
  format: number;
  guestId: string;
  guestName: string;
  version: number;
  /** ISO-8601 UTC time at which the backup started */
  time: string;
  node: string;
  /** the archived guest config (main section, as vzdump archives it) */
  config: string;
  disks: ManifestDisk[];
  /** disks left out (backup=0), for the log and the restore */
  excluded: Array<{ key: string; volume: string; reason: string }>;
  /** bytes newly written to the store by this version (after compression) */
  storedBytes: number;
  /** plain bytes of the chunks this version added to the store */
  newBytes: number;
  durationSeconds: number;
  /**
   * Optional: milliseconds the guest was off for this backup (ACPI shutdown request to the start
   * command's return), when coldvault stopped it and started it again before writing the manifest.
   * Absent in manifests written before it existed, and when the guest was not stopped by this backup.
   */
  downtimeMs?: number;
  /**
   * Optional: set on an encrypted version (sealed-manifest.ts): the key's fingerprint, the config
   * sealed (the plain `config` is then empty) and a MAC over the whole manifest.
   */
  encryption?: ManifestEncryption;
}

function canonical(manifest: Omit<Manifest, never>): string {
  return JSON.stringify(manifest, null, 2);
}

export function encodeManifest(manifest: Manifest): Buffer {
  const checksum = createHash('sha256').update(canonical(manifest)).digest('hex');
  return Buffer.from(JSON.stringify({ ...manifest, checksum }, null, 2) + '\n');
}

/** Parses and checks a manifest; throws MANIFEST_CORRUPT (or DATASTORE_TOO_NEW) naming `what`. */
export function decodeManifest(file: Buffer, what: string): Manifest {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(file.toString('utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new ColdvaultError('MANIFEST_CORRUPT', `manifest ${what} is corrupt: not JSON`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ColdvaultError('MANIFEST_CORRUPT', `manifest ${what} is corrupt: not a JSON object`);
  }
  const { checksum, ...rest } = parsed;
  const manifest = rest as unknown as Manifest;
  if (typeof manifest.format === 'number' && manifest.format > DATASTORE_FORMAT) {
    throw new ColdvaultError('DATASTORE_TOO_NEW', `manifest ${what} has format ${manifest.format}; this coldvault reads up to ${DATASTORE_FORMAT}`);
  }
  const expected = createHash('sha256').update(canonical(manifest)).digest('hex');
  if (checksum !== expected) throw new ColdvaultError('MANIFEST_CORRUPT', `manifest ${what} is corrupt: checksum mismatch`);
  checkSchema(manifest, what);
  if (manifest.encryption && !encodeManifest(manifest).equals(file)) {
    // its MAC covers the values; this covers every byte (the spacing of the JSON too): tamper-evident as a whole
    throw new ColdvaultError('MANIFEST_CORRUPT', `manifest ${what} is corrupt: it is not byte for byte as coldvault wrote it`);
  }
  return manifest;
}

/** A manifest with a valid checksum can still be one nobody should trust: see manifest-schema.ts. */
function checkSchema(manifest: Manifest, what: string): void {
  try {
    checkManifestSchema(manifest);
  } catch (err) {
    if (!(err instanceof SchemaViolation)) throw err;
    throw new ColdvaultError('MANIFEST_CORRUPT', `manifest ${what} is corrupt: ${err.message}`, { cause: err });
  }
}
