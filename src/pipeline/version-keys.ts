/**
 * Which codec reads a version (issue 13): an unencrypted version's chunks through the plain pool; an
 * encrypted one's through the pool keyed with its key, after its manifest was checked and opened
 * (format/sealed-manifest.ts: the key's fingerprint, the MAC, the guest and version it names, the
 * config). Without the key, restore is refused naming the key (KEY_REQUIRED); verify checks what it can.
 */
import { openManifest, requireKey, type Manifest, type VersionKey } from '../format/index.js';
import type { ChunkCodec, WorkerPool } from './worker-pool.js';

export interface OpenedVersion {
  /** the manifest, its config opened when it was sealed */
  manifest: Manifest;
  codec: ChunkCodec;
  /** the workers forget the key again */
  release(): void;
}

/** The version `asked` as read with `key` (undefined: none given); KEY_REQUIRED / KEY_WRONG / MANIFEST_CORRUPT. */
export function openVersion(pool: WorkerPool, manifest: Manifest, key: VersionKey | undefined, asked: { guestId: string; version: number }): OpenedVersion {
  if (!manifest.encryption) return { manifest, codec: pool, release: () => undefined };
  const what = `version ${asked.version} of guest ${asked.guestId}`;
  const opened = openManifest(manifest, requireKey(manifest, key, what), asked, what);
  const keyed = pool.withKey(key as VersionKey);
  return { manifest: opened, codec: keyed, release: keyed.release };
}
