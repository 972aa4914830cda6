/**
 * The manifest's optional `downtimeMs` (how long the guest was off for the backup): format 1 gained
 * it later, so a manifest without it (every manifest written before) still decodes, one with it
 * decodes to the same value, and a value that is not a non-negative safe integer is refused as
 * MANIFEST_CORRUPT naming the field, even with a valid checksum. The format number stays 1.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isColdvaultError } from '../../src/core/errors.js';
import { DATASTORE_FORMAT, decodeManifest, encodeManifest, type Manifest } from '../../src/format/index.js';

const WHAT = 'of guest 101 version 1';

/** A manifest as coldvault wrote them before downtimeMs existed (no such key at all). */
function oldManifest(): Manifest {
  return {
    format: 1,
    guestId: '101',
    guestName: 'web01',
    version: 1,
    time: '2025-03-01T02:00:00.000Z',
    node: 'pve1',
    config: 'cores: 1\nmemory: 256\n',
    disks: [
      {
        key: 'scsi0',
        volume: 'local:101/vm-101-disk-0.raw',
        storage: 'local',
        format: 'raw',
        size: 8 * 1024 * 1024,
        index: 'scsi0.fidx',
        sha256: 'a'.repeat(64),
        chunkSize: 4 * 1024 * 1024,
        chunkCount: 2,
        zeroChunks: 1,
        zeroBytes: 4 * 1024 * 1024,
      },
    ],
    excluded: [],
    storedBytes: 1000,
    newBytes: 2000,
    durationSeconds: 3.2,
  };
}

/** A manifest file holding `downtimeMs: value`, with a checksum that matches (as anyone could write). */
function sealedWith(value: unknown): Buffer {
  const json = { ...oldManifest(), downtimeMs: value };
  const checksum = createHash('sha256')
    .update(JSON.stringify(json, null, 2))
    .digest('hex');
  return Buffer.from(JSON.stringify({ ...json, checksum }, null, 2));
}

describe('manifest downtimeMs', () => {
  it('a manifest without it (as written before it existed) still decodes, without the field', () => {
    const file = encodeManifest(oldManifest());
    expect(file.toString('utf8')).not.toContain('downtimeMs');
    const decoded = decodeManifest(file, WHAT);
    expect(decoded).toEqual(oldManifest());
    expect(Object.hasOwn(decoded, 'downtimeMs')).toBe(false);
  });

  it('a manifest with it decodes to the same value; the format stays 1', () => {
    for (const downtimeMs of [0, 14_123, 3 * 3600 * 1000]) {
      const decoded = decodeManifest(encodeManifest({ ...oldManifest(), downtimeMs }), WHAT);
      expect(decoded.downtimeMs).toBe(downtimeMs);
      expect(decoded.format).toBe(DATASTORE_FORMAT);
    }
    expect(DATASTORE_FORMAT).toBe(1);
  });

  it('refuses a value that is not a non-negative whole number of milliseconds, naming the field', () => {
    for (const bad of [-1, 1.5, '14123', null, true, 2 ** 53, [], {}]) {
      let error: unknown;
      try {
        decodeManifest(sealedWith(bad), WHAT);
      } catch (err) {
        error = err;
      }
      expect(isColdvaultError(error, 'MANIFEST_CORRUPT'), `${JSON.stringify(bad)}: ${String(error)}`).toBe(true);
      expect((error as Error).message).toContain(`manifest ${WHAT} is corrupt: downtimeMs must be an integer from 0`);
    }
  });
});
