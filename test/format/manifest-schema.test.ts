/**
 * The manifest's strict schema (format/manifest-schema.ts), property-tested: every manifest as the
 * backup writes it is accepted; a manifest that breaks the schema is refused as MANIFEST_CORRUPT naming
 * the field, EVEN WITH A VALID CHECKSUM (resealed here as anyone with write access to a store could):
 * a missing field, an unknown field, a value of the wrong type, a negative, fractional or too large
 * number, a chunk count that does not match the size, zeros beyond the disk, a duplicated disk, and
 * above all an index name that is a path (`../../etc/x`, `/etc/shadow`, `a/b.fidx`, `..\\x.fidx`).
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isColdvaultError } from '../../src/core/errors.js';
import { CHUNK_SIZE, decodeManifest, encodeManifest, type Manifest } from '../../src/format/index.js';
import { manifest, OPTIONAL_FIELDS } from './manifest-arbitraries.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = Array<string | number>;
const WHAT = 'of guest under test';

/** The manifest's JSON without its checksum, as a mutable value. */
const jsonOf = (m: Manifest): Record<string, Json> => {
  const { checksum: _c, ...rest } = JSON.parse(encodeManifest(m).toString('utf8')) as Record<string, Json>;
  return rest;
};

/** A manifest file with a correct checksum over whatever `json` holds. */
function reseal(json: Record<string, Json>): Buffer {
  const checksum = createHash('sha256')
    .update(JSON.stringify(json, null, 2))
    .digest('hex');
  return Buffer.from(JSON.stringify({ ...json, checksum }, null, 2));
}

function refusal(file: Buffer): Error {
  try {
    decodeManifest(file, WHAT);
  } catch (err) {
    return err as Error;
  }
  throw new Error(`accepted: ${file.toString('utf8').slice(0, 400)}`);
}

/** Refused as MANIFEST_CORRUPT, and the message names the field (`disks[0].index`). */
function expectRefused(json: Record<string, Json>, field: string): void {
  const err = refusal(reseal(json));
  expect(isColdvaultError(err, 'MANIFEST_CORRUPT'), String(err)).toBe(true);
  expect(err.message).toContain(`manifest ${WHAT} is corrupt: ${field} `);
}

const name = (path: Path): string => path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');

/** Paths of every field of every object in the manifest (arrays' items are not fields). */
function fieldPaths(value: Json, prefix: Path = []): Path[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => fieldPaths(v, [...prefix, i]));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [[...prefix, k], ...fieldPaths(v, [...prefix, k])]);
}

function parentOf(root: Json, path: Path): Record<string | number, Json> {
  return path.slice(0, -1).reduce<Json>((v, k) => (v as Record<string | number, Json>)[k] as Json, root) as Record<string | number, Json>;
}

const last = (path: Path): string | number => path[path.length - 1] as string | number;

/** A value of another JSON type than `old` (never one the field could legally hold). */
function otherType(old: Json, pick: number): Json {
  const candidates: Json[] = ['text', 7, true, [], {}].filter((c) => typeof c !== typeof old || Array.isArray(c) !== Array.isArray(old));
  return candidates[pick % candidates.length] as Json;
}

const pickOf = <T>(items: T[], pick: number): T => items[pick % items.length] as T;

describe('manifest schema: what the backup writes is accepted', () => {
  // every generated manifest (the shape backup.ts writes) decoding to itself: manifest.test.ts

  it('accepts any plain file name ending in .fidx as an index', () => {
    const plain = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_-]{0,20}$/).map((s) => `${s}.fidx`);
    fc.assert(
      fc.property(
        manifest.filter((m) => m.disks.length > 0),
        plain,
        (m, index) => {
          const disks = m.disks.map((d, i) => (i === 0 ? { ...d, index } : { ...d, index: `other${i}.fidx` }));
          expect(decodeManifest(encodeManifest({ ...m, disks }), WHAT).disks[0]?.index).toBe(index);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('manifest schema: refused even with a valid checksum', () => {
  it('an index name that is a path, or not a .fidx file name', () => {
    const traversal = fc.oneof(
      fc.constantFrom(
        '../../etc/x',
        '../../../etc/shadow.fidx',
        '/etc/passwd',
        '/abs/scsi0.fidx',
        'a/b.fidx',
        '..\\x.fidx',
        'sub\\scsi0.fidx',
        '..',
        '.',
        '',
        '.fidx',
        '..fidx',
        'scsi0..fidx',
        '.hidden.fidx',
        'scsi0.fidx/..',
        'scsi0.raw',
        'scsi0.fidx\n',
        ' scsi0.fidx',
      ),
      fc.tuple(fc.string({ maxLength: 8 }), fc.constantFrom('/', '\\', '..'), fc.string({ maxLength: 8 })).map(([a, sep, b]) => `${a}${sep}${b}.fidx`),
    );
    fc.assert(
      fc.property(
        manifest.filter((m) => m.disks.length > 0),
        traversal,
        fc.nat(),
        (m, index, at) => {
          const json = jsonOf(m);
          const i = at % m.disks.length;
          ((json.disks as Json[])[i] as Record<string, Json>).index = index;
          expectRefused(json, `disks[${i}].index`);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('a missing field, anywhere (but an optional one)', () => {
    fc.assert(
      fc.property(manifest, fc.nat(), (m, pick) => {
        const json = jsonOf(m);
        const path = pickOf(
          fieldPaths(json).filter((p) => !(p.length === 1 && OPTIONAL_FIELDS.includes(String(p[0])))),
          pick,
        );
        delete parentOf(json, path)[last(path)];
        expectRefused(json, name(path));
      }),
      { numRuns: 400 },
    );
  });

  it('an unknown field, in any object', () => {
    fc.assert(
      fc.property(manifest, fc.nat(), fc.constantFrom('protected', 'extra', 'Index', 'checksum2', '__proto__x'), (m, pick, key) => {
        const json = jsonOf(m);
        const objectPaths: Path[] = [[], ...(json.disks as Json[]).map((_, i) => ['disks', i]), ...(json.excluded as Json[]).map((_, i) => ['excluded', i])];
        const target = pickOf(objectPaths, pick);
        const obj = target.reduce<Json>((v, k) => (v as Record<string | number, Json>)[k] as Json, json) as Record<string, Json>;
        obj[key] = 1;
        expectRefused(json, name([...target, key]));
      }),
      { numRuns: 300 },
    );
  });

  it('a value of another type, for any field', () => {
    fc.assert(
      fc.property(manifest, fc.nat(), fc.nat(), (m, pick, kind) => {
        const json = jsonOf(m);
        const path = pickOf(fieldPaths(json), pick);
        const parent = parentOf(json, path);
        const old = parent[last(path)] as Json;
        parent[last(path)] = last(path) === 'storage' && old === null ? 7 : otherType(old, kind);
        expectRefused(json, name(path));
      }),
      { numRuns: 500 },
    );
  });

  it('a size or count that is negative, fractional or beyond 2^53', () => {
    const numberFields = ['storedBytes', 'newBytes', 'version', 'format', 'downtimeMs'];
    const diskFields = ['size', 'chunkCount', 'zeroChunks', 'zeroBytes', 'chunkSize'];
    const bad = fc.constantFrom(-1, -4096, 0.5, 1.25, 2 ** 53, 1e300, -0.001);
    fc.assert(
      fc.property(
        manifest.filter((m) => m.disks.length > 0),
        fc.nat(),
        bad,
        (m, pick, value) => {
          const json = jsonOf(m);
          const paths: Path[] = [...numberFields.map((f) => [f]), ...diskFields.map((f) => ['disks', 0, f])];
          const path = pickOf(paths, pick);
          parentOf(json, path)[last(path)] = value;
          // changing one number may break a rule between fields first: either way it is refused naming a field
          const err = refusal(reseal(json));
          expect(isColdvaultError(err, 'MANIFEST_CORRUPT') || isColdvaultError(err, 'DATASTORE_TOO_NEW'), String(err)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a chunk count that does not match the size, zeros beyond the disk, a disk key or index used twice', () => {
    fc.assert(
      fc.property(
        manifest.filter((m) => m.disks.length > 0),
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom('count', 'zeroChunks', 'zeroBytes', 'twice'),
        (m, by, rule) => {
          const json = jsonOf(m);
          const disks = json.disks as Array<Record<string, Json>>;
          const disk = disks[0] as Record<string, Json>;
          if (rule === 'count') {
            disk.chunkCount = (disk.chunkCount as number) + by;
            return expectRefused(json, 'disks[0].chunkCount');
          }
          if (rule === 'zeroChunks') {
            disk.zeroChunks = (disk.chunkCount as number) + by;
            return expectRefused(json, 'disks[0].zeroChunks');
          }
          if (rule === 'zeroBytes') {
            disk.zeroBytes = (disk.size as number) + by;
            return expectRefused(json, 'disks[0].zeroBytes');
          }
          disks.push({ ...disk });
          expectRefused(json, `disks[${disks.length - 1}].key`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('examples: the refusal names the field and what is wrong with it', () => {
    const m = fc.sample(
      manifest.filter((x) => x.disks.length > 0),
      { numRuns: 1, seed: 7 },
    )[0] as Manifest;
    const json = jsonOf(m);
    ((json.disks as Json[])[0] as Record<string, Json>).index = '../../etc/x';
    expect(refusal(reseal(json)).message).toBe(
      `manifest ${WHAT} is corrupt: disks[0].index must be a file name in the version folder ending in .fidx (no path), not "../../etc/x"`,
    );
    const sized = jsonOf({ ...m, disks: [{ ...(m.disks[0] as Manifest['disks'][number]), size: 3 * CHUNK_SIZE, chunkCount: 2, zeroChunks: 0, zeroBytes: 0 }] });
    expect(refusal(reseal(sized)).message).toBe(
      `manifest ${WHAT} is corrupt: disks[0].chunkCount must be 3 for ${3 * CHUNK_SIZE} bytes in chunks of ${CHUNK_SIZE}, not 2`,
    );
    expect(refusal(reseal({ ...jsonOf(m), protected: true })).message).toBe(`manifest ${WHAT} is corrupt: protected is not a field of a format-1 manifest`);
  });
});
