/**
 * The extent-map comparison of the changed-extent nightly backup (src/pipeline/changed-extents.ts)
 * against a brute-force reference: both extent lists expanded to one (physical address, flags) entry
 * per byte, compared chunk by chunk. A chunk the comparison calls unchanged is not read at all (its
 * digest comes from the base's index), so a wrong "unchanged" would put old data into a backup.
 *
 * The lists are random: a base map, and a next map made from it the way writes after a reflink clone
 * change a map (extents split, moved to new blocks, no longer shared, holes filled or punched), plus
 * any flag, extents past the end of the file, overlapping extents within one map, offsets and sizes
 * not aligned to the chunk size. Offsets are small numbers of bytes so that the reference stays cheap;
 * the comparison does not care about the scale.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FIEMAP_EXTENT, type FileExtent } from '../../src/core/index.js';
import { unchangedChunks } from '../../src/pipeline/changed-extents.js';

const { SHARED, LAST } = FIEMAP_EXTENT;
const ALL_FLAGS = Object.values(FIEMAP_EXTENT);

/** What one byte of a file is, by the map: a hole, in one extent (its physical address), or claimed twice. */
type ByteState = { kind: 'hole' } | { kind: 'data'; physical: number; flags: number } | { kind: 'conflict' };

function byteStates(extents: readonly FileExtent[], size: number): ByteState[] {
  const states: ByteState[] = Array.from({ length: size }, () => ({ kind: 'hole' }));
  for (const e of extents) {
    for (let x = Math.max(0, e.logical); x < Math.min(size, e.logical + e.length); x++) {
      states[x] = states[x]?.kind === 'hole' ? { kind: 'data', physical: e.physical + (x - e.logical), flags: e.flags } : { kind: 'conflict' };
    }
  }
  return states;
}

function referenceUnchanged(base: readonly FileExtent[], next: readonly FileExtent[], size: number, chunkSize: number): Set<number> {
  const b = byteStates(base, size);
  const n = byteStates(next, size);
  const out = new Set<number>();
  for (let c = 0; c * chunkSize < size; c++) {
    let sharedBytes = 0;
    let ok = true;
    for (let x = c * chunkSize; x < Math.min(size, (c + 1) * chunkSize); x++) {
      const [p, q] = [b[x] as ByteState, n[x] as ByteState];
      if (p.kind === 'hole' && q.kind === 'hole') continue;
      const same = p.kind === 'data' && q.kind === 'data' && p.physical === q.physical && trustedFlags(p.flags) && trustedFlags(q.flags);
      if (!same) ok = false;
      sharedBytes++;
    }
    if (ok && sharedBytes > 0) out.add(c);
  }
  return out;
}

function trustedFlags(flags: number): boolean {
  return (flags & SHARED) !== 0 && (flags | SHARED | LAST) === (SHARED | LAST);
}

/** Mostly SHARED (with or without LAST), sometimes nothing or any combination of the kernel's flags. */
const flags = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(SHARED, SHARED | LAST) },
  { weight: 1, arbitrary: fc.constantFrom(0, LAST) },
  { weight: 2, arbitrary: fc.subarray(ALL_FLAGS, { minLength: 1, maxLength: 3 }).map((fs) => fs.reduce((a, f) => a | f, 0)) },
);

/** A plausible map: sorted extents with gaps, physical addresses from a small range (so they collide). */
const extentList = (size: number): fc.Arbitrary<FileExtent[]> =>
  fc
    .array(fc.record({ gap: fc.integer({ min: 0, max: 40 }), length: fc.integer({ min: 1, max: 120 }), physical: fc.integer({ min: 0, max: 400 }), flags }), {
      maxLength: 12,
    })
    .map((parts) => {
      let at = 0;
      const out: FileExtent[] = [];
      for (const p of parts) {
        at += p.gap;
        if (at > size + 30) break;
        out.push({ logical: at, physical: p.physical, length: p.length, flags: p.flags });
        at += p.length;
      }
      return out;
    });

/** What a write after the clone does to one extent of the base, as seen in the next map. */
const mutation = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ kind: 'keep' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('split' as const), at: fc.nat(), moveTo: fc.integer({ min: 0, max: 400 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('move' as const), by: fc.integer({ min: -3, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flags' as const), flags }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'punch' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('overlap' as const), from: fc.nat(), length: fc.integer({ min: 1, max: 30 }) }) },
);

type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(e: FileExtent, m: Mutation): FileExtent[] {
  switch (m.kind) {
    case 'keep':
      return [e];
    case 'split': {
      const at = e.length > 1 ? 1 + (m.at % (e.length - 1)) : 0;
      if (at === 0) return [{ ...e, physical: m.moveTo, flags: 0 }];
      return [
        { ...e, length: at },
        { logical: e.logical + at, physical: m.moveTo, length: e.length - at, flags: 0 },
      ];
    }
    case 'move':
      return [{ ...e, physical: e.physical + m.by }];
    case 'flags':
      return [{ ...e, flags: m.flags }];
    case 'punch':
      return [];
    case 'overlap':
      return [e, { logical: e.logical + (m.from % e.length), physical: e.physical + (m.from % e.length), length: m.length, flags: e.flags }];
  }
}

/** A base map and a next map derived from it (or, sometimes, an unrelated one). */
const scenario = fc
  .record({ size: fc.integer({ min: 1, max: 500 }), chunkSize: fc.integer({ min: 1, max: 97 }) })
  .chain(({ size, chunkSize }) =>
    fc.record({
      size: fc.constant(size),
      chunkSize: fc.constant(chunkSize),
      base: extentList(size),
      mutations: fc.array(mutation, { minLength: 12, maxLength: 12 }),
      added: fc.oneof(fc.constant([] as FileExtent[]), extentList(size)),
      unrelated: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: extentList(size) }),
    }),
  )
  .map(({ size, chunkSize, base, mutations, added, unrelated }) => {
    const derived = base.flatMap((e, i) => mutate(e, mutations[i % mutations.length] as Mutation));
    const next = unrelated ?? [...derived, ...added.filter((a) => !derived.some((d) => a.logical < d.logical + d.length && d.logical < a.logical + a.length))];
    return { size, chunkSize, base, next: next.sort((a, b) => a.logical - b.logical) };
  });

describe('unchangedChunks', () => {
  it('agrees with the per-byte reference on random extent maps', () => {
    fc.assert(
      fc.property(scenario, ({ size, chunkSize, base, next }) => {
        expect([...unchangedChunks(base, next, size, chunkSize)].sort((a, b) => a - b)).toEqual(
          [...referenceUnchanged(base, next, size, chunkSize)].sort((a, b) => a - b),
        );
      }),
      { numRuns: 3000 },
    );
  });

  it('finds unchanged chunks in most random scenarios (the property is not vacuous)', () => {
    const samples = fc.sample(scenario, { numRuns: 500, seed: 11 });
    const withUnchanged = samples.filter((s) => referenceUnchanged(s.base, s.next, s.size, s.chunkSize).size > 0).length;
    const withChanged = samples.filter((s) => referenceUnchanged(s.base, s.next, s.size, s.chunkSize).size < Math.ceil(s.size / s.chunkSize)).length;
    expect(withUnchanged).toBeGreaterThan(100);
    expect(withChanged).toBeGreaterThan(100);
  });

  const MiB4 = 4 * 1024 * 1024;
  const shared = (logical: number, physical: number, length: number, flags: number = SHARED): FileExtent => ({ logical, physical, length, flags });

  it('takes a chunk whose bytes are all shared at the same place in both files, and nothing else', () => {
    const base = [shared(0, 1 << 30, 3 * MiB4, SHARED | LAST)];
    const next = [
      shared(0, 1 << 30, MiB4 + 4096),
      { logical: MiB4 + 4096, physical: 5 << 30, length: 4096, flags: 0 },
      shared(MiB4 + 8192, (1 << 30) + MiB4 + 8192, 2 * MiB4 - 8192, SHARED | LAST),
    ];
    expect([...unchangedChunks(base, next, 3 * MiB4, MiB4)]).toEqual([0, 2]);
  });

  it('reads a chunk with a hole in one file only, and skips one that is a hole in both', () => {
    const base = [shared(0, 0, MiB4)];
    const next = [shared(0, 0, MiB4 / 2)];
    expect(unchangedChunks(base, next, 2 * MiB4, MiB4).size).toBe(0);
    expect([...unchangedChunks([shared(0, 0, MiB4 / 2)], [shared(0, 0, MiB4 / 2)], 2 * MiB4, MiB4)]).toEqual([0]);
  });

  it('reads every chunk whose extent carries a flag beyond SHARED and LAST', () => {
    for (const flag of [
      FIEMAP_EXTENT.UNKNOWN,
      FIEMAP_EXTENT.DELALLOC,
      FIEMAP_EXTENT.ENCODED,
      FIEMAP_EXTENT.UNWRITTEN,
      FIEMAP_EXTENT.DATA_INLINE,
      FIEMAP_EXTENT.NOT_ALIGNED,
    ]) {
      expect(unchangedChunks([shared(0, 0, MiB4, SHARED | flag)], [shared(0, 0, MiB4)], MiB4, MiB4).size).toBe(0);
      expect(unchangedChunks([shared(0, 0, MiB4)], [shared(0, 0, MiB4, SHARED | flag)], MiB4, MiB4).size).toBe(0);
    }
  });

  it('compares the short last chunk up to the file size only (extents past the end do not count)', () => {
    const size = 2 * MiB4 + 12345;
    const base = [shared(0, 0, size + 4096 - (size % 4096), SHARED | LAST), shared(3 * MiB4, 7 << 30, MiB4, FIEMAP_EXTENT.UNWRITTEN)];
    const next = [shared(0, 0, size + 4096 - (size % 4096), SHARED | LAST)];
    expect([...unchangedChunks(base, next, size, MiB4)]).toEqual([0, 1, 2]);
  });
});
