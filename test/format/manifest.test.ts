/**
 * Manifest codec (format/manifest.ts): a manifest read back is the one written; a manifest changed
 * after writing (a field edited, a byte damaged) is MANIFEST_CORRUPT, never trusted; a manifest of a
 * newer format is refused as DATASTORE_TOO_NEW, so an old coldvault does not misread a new store.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isColdvaultError, type ErrorCode } from '../../src/core/errors.js';
import { DATASTORE_FORMAT, decodeManifest, encodeManifest, type Manifest } from '../../src/format/index.js';
import { manifest } from './manifest-arbitraries.js';

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

function expectCode(fn: () => unknown, code: ErrorCode): void {
  const err = thrownBy(fn);
  expect(err, `decodeManifest accepted the file; expected ${code}`).toBeDefined();
  expect(isColdvaultError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  expect((err as Error).message).toContain('of guest under test');
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** All paths to leaves (and to arrays/objects, which can be replaced whole) of a JSON value. */
function paths(value: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = prefix.length ? [prefix] : [];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

function getAt(root: Json, path: Array<string | number>): Json {
  return path.reduce<Json>((v, k) => (v as Record<string | number, Json>)[k] as Json, root);
}

function setAt(root: Json, path: Array<string | number>, value: Json): void {
  const parent = getAt(root, path.slice(0, -1)) as Record<string | number, Json>;
  parent[path[path.length - 1] as string | number] = value;
}

/** A value of the same kind that differs from `old`. */
function changed(old: Json, seed: number): Json {
  if (typeof old === 'number') return old + 1 + (seed % 1000);
  if (typeof old === 'string') return old.length > 0 && seed % 2 ? old.slice(0, -1) : `${old}x`;
  if (typeof old === 'boolean') return !old;
  if (old === null) return 'not null';
  if (Array.isArray(old)) return seed % 2 && old.length > 0 ? old.slice(1) : [...old, 'extra'];
  return { ...old, extra: seed };
}

describe('manifest', () => {
  it('decodes to exactly the manifest encoded', () => {
    fc.assert(
      fc.property(manifest, (m) => {
        const file = encodeManifest(m);
        expect(decodeManifest(file, 'of guest under test')).toEqual(m);
        // and it is readable JSON, checksum included, for an admin with `cat`
        const parsed = JSON.parse(file.toString('utf8')) as Record<string, unknown>;
        expect(parsed.checksum).toMatch(/^[0-9a-f]{64}$/);
        expect(parsed.guestId).toBe(m.guestId);
      }),
      { numRuns: 300 },
    );
  });

  it('reports a changed field (any field, nested ones included) as MANIFEST_CORRUPT', () => {
    fc.assert(
      fc.property(manifest, fc.nat(), fc.nat(), (m, pick, seed) => {
        const json = JSON.parse(encodeManifest(m).toString('utf8')) as Json;
        const candidates = paths(json).filter((p) => p[0] !== 'format');
        const path = candidates[pick % candidates.length] as Array<string | number>;
        setAt(json, path, changed(getAt(json, path), seed));
        expectCode(() => decodeManifest(Buffer.from(JSON.stringify(json, null, 2)), 'of guest under test'), 'MANIFEST_CORRUPT');
      }),
      { numRuns: 500 },
    );
  });

  it('reports an added or a removed field, and a missing checksum, as MANIFEST_CORRUPT', () => {
    fc.assert(
      fc.property(manifest, fc.constantFrom('guestName', 'disks', 'time', 'checksum', 'node'), (m, key) => {
        const json = JSON.parse(encodeManifest(m).toString('utf8')) as Record<string, Json>;
        const removed = { ...json };
        delete removed[key];
        expectCode(() => decodeManifest(Buffer.from(JSON.stringify(removed)), 'of guest under test'), 'MANIFEST_CORRUPT');
        expectCode(() => decodeManifest(Buffer.from(JSON.stringify({ ...json, protected: true })), 'of guest under test'), 'MANIFEST_CORRUPT');
      }),
      { numRuns: 100 },
    );
  });

  it('never returns a different manifest for a file with one byte changed: it is refused, or (whitespace only) the same', () => {
    fc.assert(
      fc.property(manifest, fc.nat(), fc.integer({ min: 1, max: 255 }), (m, at, xor) => {
        const file = encodeManifest(m);
        const pos = at % file.length;
        file[pos] = (file[pos] as number) ^ xor;
        const err = thrownBy(() => decodeManifest(file, 'of guest under test'));
        if (err === undefined) {
          expect(decodeManifest(file, 'of guest under test')).toEqual(m);
          return;
        }
        expect(
          isColdvaultError(err, 'MANIFEST_CORRUPT') || isColdvaultError(err, 'DATASTORE_TOO_NEW'),
          err instanceof Error ? err.message : JSON.stringify(err),
        ).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses a manifest of format 99 as DATASTORE_TOO_NEW (checksum valid or not)', () => {
    fc.assert(
      fc.property(manifest, fc.integer({ min: DATASTORE_FORMAT + 1, max: 1000 }), (m, format) => {
        expectCode(() => decodeManifest(encodeManifest({ ...m, format }), 'of guest under test'), 'DATASTORE_TOO_NEW');
        const json = JSON.parse(encodeManifest(m).toString('utf8')) as Record<string, Json>;
        expectCode(() => decodeManifest(Buffer.from(JSON.stringify({ ...json, format })), 'of guest under test'), 'DATASTORE_TOO_NEW');
      }),
      { numRuns: 100 },
    );
    const m = fc.sample(manifest, { numRuns: 1, seed: 42 })[0] as Manifest;
    const err = thrownBy(() => decodeManifest(encodeManifest({ ...m, format: 99 }), 'of guest under test')) as Error;
    expect(isColdvaultError(err, 'DATASTORE_TOO_NEW')).toBe(true);
    expect(err.message).toContain('99');
  });

  it('refuses truncated and non-JSON files as MANIFEST_CORRUPT: empty, 1 and 3 bytes, cut anywhere', () => {
    fc.assert(
      fc.property(manifest, fc.nat(), (m, cut) => {
        const file = encodeManifest(m);
        for (const length of [0, 1, 3]) expectCode(() => decodeManifest(file.subarray(0, length), 'of guest under test'), 'MANIFEST_CORRUPT');
        // cut before the closing brace: never valid
        const at = cut % (file.length - 2);
        expectCode(() => decodeManifest(file.subarray(0, at), 'of guest under test'), 'MANIFEST_CORRUPT');
      }),
      { numRuns: 200 },
    );
  });

  it('refuses JSON that is not a manifest object (null, [], 42, a string, {}) as MANIFEST_CORRUPT', () => {
    for (const text of ['null', '[]', '42', '"manifest"', '{}']) {
      expect(
        isColdvaultError(
          thrownBy(() => decodeManifest(Buffer.from(text), 'of guest under test')),
          'MANIFEST_CORRUPT',
        ),
        text,
      ).toBe(true);
    }
  });
});
