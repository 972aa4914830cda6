/** A version as `coldvault list --json` prints it and the API returns it: one documented shape. */
import type { CatalogVersion } from './types.js';

export function versionJson(v: CatalogVersion): Record<string, unknown> {
  return {
    id: v.guestId,
    version: v.version,
    time: v.time,
    name: v.name,
    node: v.node,
    disks: v.disks.map((d) => ({ key: d.key, volume: d.volume, format: d.format, size: d.size, sha256: d.sha256, zeroBytes: d.zeroBytes })),
    verified: v.verifyState === 'ok',
    verifyState: v.verifyState,
    verifiedAt: v.verifiedAt,
    protected: v.protected,
    logicalBytes: v.logicalBytes,
    zeroBytes: v.zeroBytes,
    newBytes: v.newBytes,
    storedBytes: v.storedBytes,
    downtimeMs: v.downtimeMs,
    encrypted: v.keyFingerprint !== null,
    keyFingerprint: v.keyFingerprint,
    bootTest: v.bootTest,
  };
}
