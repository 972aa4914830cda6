/** Mapping between a Manifest, the catalog's SQL rows, and the CatalogVersion the engine sees. */
import type { Manifest } from '../format/index.js';
import type { BootTestRecord, CatalogDisk, CatalogVersion, VerifyState } from './types.js';

export interface VersionRow {
  guest_id: string;
  version: number;
  time: string;
  name: string;
  node: string;
  logical_bytes: number;
  zero_bytes: number;
  new_bytes: number;
  stored_bytes: number;
  chunk_count: number;
  downtime_ms: number | null;
  key_fingerprint: string | null;
}

export interface StoredVersionRow extends VersionRow {
  verify_state: VerifyState;
  verified_at: string | null;
  verify_detail: string | null;
  protected: number;
  boot_ok: number | null;
  boot_seconds: number | null;
  boot_signal: string | null;
  boot_at: string | null;
  boot_detail: string | null;
}

export interface DiskRow {
  guest_id: string;
  version: number;
  position: number;
  key: string;
  volume: string;
  format: string;
  size: number;
  sha256: string;
  zero_bytes: number;
  chunk_count: number;
  zero_chunks: number;
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

export function versionRow(m: Manifest): VersionRow {
  return {
    guest_id: m.guestId,
    version: m.version,
    time: m.time,
    name: m.guestName,
    node: m.node,
    logical_bytes: sum(m.disks.map((d) => d.size)),
    zero_bytes: sum(m.disks.map((d) => d.zeroBytes)),
    new_bytes: m.newBytes,
    stored_bytes: m.storedBytes,
    chunk_count: sum(m.disks.map((d) => d.chunkCount)),
    downtime_ms: m.downtimeMs ?? null,
    key_fingerprint: m.encryption?.fingerprint ?? null,
  };
}

export function diskRows(m: Manifest): DiskRow[] {
  return m.disks.map((d, position) => ({
    guest_id: m.guestId,
    version: m.version,
    position,
    key: d.key,
    volume: d.volume,
    format: d.format,
    size: d.size,
    sha256: d.sha256,
    zero_bytes: d.zeroBytes,
    chunk_count: d.chunkCount,
    zero_chunks: d.zeroChunks,
  }));
}

function toDisk(row: DiskRow): CatalogDisk {
  return {
    key: row.key,
    volume: row.volume,
    format: row.format,
    size: row.size,
    sha256: row.sha256,
    zeroBytes: row.zero_bytes,
    chunkCount: row.chunk_count,
    zeroChunks: row.zero_chunks,
  };
}

export function toVersion(row: StoredVersionRow, disks: DiskRow[]): CatalogVersion {
  return {
    guestId: row.guest_id,
    version: row.version,
    time: row.time,
    name: row.name,
    node: row.node,
    disks: disks.map(toDisk),
    logicalBytes: row.logical_bytes,
    zeroBytes: row.zero_bytes,
    newBytes: row.new_bytes,
    storedBytes: row.stored_bytes,
    chunkCount: row.chunk_count,
    downtimeMs: row.downtime_ms,
    keyFingerprint: row.key_fingerprint,
    verifyState: row.verify_state,
    verifiedAt: row.verified_at,
    verifyDetail: row.verify_detail,
    protected: row.protected === 1,
    bootTest: bootTestOf(row),
  };
}

function bootTestOf(row: StoredVersionRow): BootTestRecord | null {
  if (row.boot_ok === null || row.boot_at === null) return null;
  return { ok: row.boot_ok === 1, seconds: row.boot_seconds ?? 0, signal: row.boot_signal ?? '', at: row.boot_at, detail: row.boot_detail };
}

/** `101/3`: how messages and maps name a version. */
export function versionKey(guestId: string, version: number): string {
  return `${guestId}/${version}`;
}
