/**
 * Encrypted chunk blobs (format/encrypted-blob.ts, issue 13): what a stolen or tampering store
 * cannot do. Round trips raw and compressed; names are keyed (dedup under one key, never across two,
 * nothing learnt from a name); every single-byte change of a blob is found: by the CRC without the
 * key, by the tag with it (fast-check over positions and values, the CRC fixed up by the attacker);
 * a blob under another name or under another key fails; a marker in the data is nowhere in the blob.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkEncryptedBlob,
  chunkDigest,
  chunkKeys,
  decodeEncryptedBlobInto,
  encodeEncryptedBlobInto,
  encryptedChunkId,
  maxEncryptedBlobSize,
  newMasterKey,
} from '../../dist/format/index.js';

const keys = chunkKeys(newMasterKey());
const other = chunkKeys(newMasterKey());
const MARKER = Buffer.from('coldvault-marker-64-bytes:'.padEnd(64, '#'));
/** compressible data with a marker in it, and incompressible data */
const text = Buffer.concat(Array.from({ length: 4096 }, (_, i) => (i === 1000 ? MARKER : Buffer.from(`line ${i} of a log file\n`))));
const noise = randomBytes(65536);
noise.set(MARKER, 777);

function seal(plain: Buffer, level = 3, k = keys): { id: Buffer; blob: Buffer } {
  const id = encryptedChunkId(plain, k);
  const out = Buffer.alloc(maxEncryptedBlobSize(plain.length));
  return { id, blob: Buffer.from(out.subarray(0, encodeEncryptedBlobInto(plain, id, k, level, out))) };
}
const open = (blob: Buffer, id: Buffer, length: number, k = keys): Buffer => {
  const out = Buffer.alloc(length);
  decodeEncryptedBlobInto(blob, id, k, 'chunk x', out, length);
  return out;
};
/** what an attacker who edits a blob would do to pass the CRC: fix it up */
const fixCrc = (blob: Buffer): Buffer => {
  blob.writeUInt32LE(crc32(blob.subarray(12), crc32(blob.subarray(0, 8))), 8);
  return blob;
};

describe('encrypted chunk blobs', () => {
  it('round trips compressed and raw, and hides the data: no marker, no plain SHA-256 as the name', () => {
    for (const [plain, level, magic] of [
      [text, 3, 'CVBLOB\x00C'],
      [noise, 3, 'CVBLOB\x00E'],
      [text, 0, 'CVBLOB\x00E'],
    ] as const) {
      const { id, blob } = seal(plain, level);
      expect(blob.subarray(0, 8).toString('latin1')).toBe(magic);
      expect(open(blob, id, plain.length).equals(plain)).toBe(true);
      expect(blob.includes(MARKER)).toBe(false);
      expect(blob.includes(MARKER.subarray(0, 16))).toBe(false);
      expect(id.equals(chunkDigest(plain))).toBe(false);
      checkEncryptedBlob(blob, 'chunk x'); // without the key: structure and CRC
    }
  });

  it('names dedup under one key and differ between two keys; two seals of one chunk differ (fresh nonce)', () => {
    expect(encryptedChunkId(text, keys).equals(encryptedChunkId(Buffer.from(text), keys))).toBe(true);
    expect(encryptedChunkId(text, keys).equals(encryptedChunkId(text, other))).toBe(false);
    expect(seal(text).blob.equals(seal(text).blob)).toBe(false);
  });

  it('every single-byte change is found: by the CRC without the key, by the tag with it even when the CRC is fixed up', () => {
    const { id, blob } = seal(text);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: blob.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bad = Buffer.from(blob);
        bad[at] = (bad[at] as number) ^ xor;
        expect(() => checkEncryptedBlob(bad, 'chunk x')).toThrow(/chunk x is corrupt/);
        if (at >= 8 && at < 12) return; // the CRC itself
        expect(() => open(fixCrc(Buffer.from(bad)), id, text.length)).toThrow(/chunk x is corrupt/);
      }),
      { numRuns: 400 },
    );
  });

  it("a blob under another chunk's name, a truncated one, or one opened with another key: CHUNK_CORRUPT", () => {
    const a = seal(text);
    const b = seal(noise);
    expect(() => open(b.blob, a.id, noise.length)).toThrow(/does not authenticate under key/);
    expect(() => open(fixCrc(Buffer.from(a.blob.subarray(0, a.blob.length - 1))), a.id, text.length)).toThrow(/chunk x is corrupt/);
    expect(() => open(a.blob, a.id, text.length, other)).toThrow(`does not authenticate under key ${other.fingerprint}`);
    const flipped = Buffer.from(a.blob);
    flipped.write('CVBLOB\x00E', 0, 'latin1'); // claims raw: the magic is authenticated too
    expect(() => open(fixCrc(flipped), a.id, text.length)).toThrow(/does not authenticate/);
  });
});

describe('the two ways of sealing', () => {
  it('the native addon (OpenSSL in place) and node:crypto (COLDVAULT_NATIVE=off) write one format: a blob sealed by either opens with the other', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cv-seal-paths-'));
    try {
      const master = newMasterKey();
      const k = chunkKeys(master);
      const plain = Buffer.concat([text, noise]);
      const mine = seal(plain, 3, k);
      writeFileSync(join(dir, 'native.blob'), mine.blob);
      const script = `
        import { chunkKeys, decodeEncryptedBlobInto, encodeEncryptedBlobInto, encryptedChunkId, maxEncryptedBlobSize } from ${JSON.stringify(new URL('../../dist/format/index.js', import.meta.url).href)};
        import { loadNative } from ${JSON.stringify(new URL('../../dist/core/index.js', import.meta.url).href)};
        import { readFileSync, writeFileSync } from 'node:fs';
        if (loadNative() !== null) throw new Error('COLDVAULT_NATIVE=off did not turn the addon off');
        const k = chunkKeys(Buffer.from(process.argv[1], 'hex'));
        const plain = readFileSync(process.argv[2] + '/plain');
        const id = encryptedChunkId(plain, k);
        const out = Buffer.alloc(plain.length);
        decodeEncryptedBlobInto(readFileSync(process.argv[2] + '/native.blob'), id, k, 'chunk n', out, plain.length);
        if (!out.equals(plain)) throw new Error('opened to other bytes');
        const blob = Buffer.alloc(maxEncryptedBlobSize(plain.length));
        writeFileSync(process.argv[2] + '/js.blob', blob.subarray(0, encodeEncryptedBlobInto(plain, id, k, 3, blob)));`;
      writeFileSync(join(dir, 'plain'), plain);
      execFileSync(process.execPath, ['--input-type=module', '-e', script, master.toString('hex'), dir], { env: { ...process.env, COLDVAULT_NATIVE: 'off' } });
      const js = readFileSync(join(dir, 'js.blob'));
      expect(js.length).toBe(mine.blob.length);
      expect(js.equals(mine.blob)).toBe(false); // a fresh nonce each time
      expect(open(js, mine.id, plain.length, k).equals(plain)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
