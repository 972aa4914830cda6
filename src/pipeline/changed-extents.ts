/**
 * Which chunks of a disk have not changed since its base snapshot, told from the two files' extent
 * maps alone (FIEMAP; pure, no I/O). A reflink clone shares its blocks with the file it was cloned
 * from; a write to either file gets new blocks (copy on write). So a byte that lies, in both files, in
 * an extent marked SHARED at the same physical address for the same logical offset holds the same
 * value in both: nobody wrote it since the base was cloned.
 *
 * A chunk is unchanged when every one of its bytes is either
 *  - in such an extent in both files, with no flag beyond SHARED and LAST (UNKNOWN, DELALLOC,
 *    ENCODED, DATA_ENCRYPTED, NOT_ALIGNED, DATA_INLINE, DATA_TAIL, UNWRITTEN, MERGED: any doubt
 *    means read), or
 *  - in a hole in both files (zero in both),
 * and at least one byte is of the first kind: a chunk that is a hole in both is a hole, never read
 * anyway. Everything else changed: a hole in one file only, a different physical address, an extent
 * not marked SHARED, two extents of one file claiming the same byte (a map that makes no sense).
 *
 * Algorithm: sweep over the boundaries of both maps (clipped to the file size); between two
 * boundaries each file is in one state (hole, one extent, or several); each such segment marks the
 * chunks it touches as changed or as holding shared bytes.
 */
import { FIEMAP_EXTENT, type FileExtent } from '../core/index.js';

/** Flags an extent may carry and still be trusted as unchanged. */
const TRUSTED_FLAGS = FIEMAP_EXTENT.SHARED | FIEMAP_EXTENT.LAST;

type Side = 'base' | 'next';

interface Boundary {
  at: number;
  side: Side;
  extent: FileExtent;
  starts: boolean;
}

/** The chunk indexes (of `chunkSize` bytes over `size` bytes) whose bytes have not changed. */
export function unchangedChunks(base: readonly FileExtent[], next: readonly FileExtent[], size: number, chunkSize: number): Set<number> {
  const count = Math.ceil(size / chunkSize);
  const changed = new Uint8Array(count);
  const shared = new Uint8Array(count);
  sweep(boundaries(base, next, size), size, (from, to, same) => {
    const marks = same === 'changed' ? changed : same === 'shared' ? shared : undefined;
    if (marks) for (let c = Math.floor(from / chunkSize); c <= Math.floor((to - 1) / chunkSize); c++) marks[c] = 1;
  });
  const out = new Set<number>();
  for (let c = 0; c < count; c++) if (shared[c] && !changed[c]) out.add(c);
  return out;
}

function boundaries(base: readonly FileExtent[], next: readonly FileExtent[], size: number): Boundary[] {
  const out: Boundary[] = [];
  const add = (side: Side, extents: readonly FileExtent[]): void => {
    for (const extent of extents) {
      const from = Math.max(0, extent.logical);
      const to = Math.min(size, extent.logical + extent.length);
      if (from >= to) continue;
      out.push({ at: from, side, extent, starts: true }, { at: to, side, extent, starts: false });
    }
  };
  add('base', base);
  add('next', next);
  return out.sort((a, b) => a.at - b.at);
}

type Verdict = 'changed' | 'shared' | 'holes';

/** Calls `segment` for each stretch [from, to) of [0, size) in which both files keep one state. */
function sweep(points: Boundary[], size: number, segment: (from: number, to: number, verdict: Verdict) => void): void {
  const active: Record<Side, Set<FileExtent>> = { base: new Set(), next: new Set() };
  let pos = 0;
  let i = 0;
  while (pos < size) {
    for (; i < points.length && (points[i] as Boundary).at === pos; i++) {
      const p = points[i] as Boundary;
      if (p.starts) active[p.side].add(p.extent);
      else active[p.side].delete(p.extent);
    }
    const end = i < points.length ? (points[i] as Boundary).at : size;
    segment(pos, end, verdict(active.base, active.next));
    pos = end;
  }
}

function verdict(base: Set<FileExtent>, next: Set<FileExtent>): Verdict {
  if (base.size === 0 && next.size === 0) return 'holes';
  if (base.size !== 1 || next.size !== 1) return 'changed';
  const [b] = base;
  const [n] = next;
  return b && n && trusted(b) && trusted(n) && b.physical - b.logical === n.physical - n.logical ? 'shared' : 'changed';
}

function trusted(e: FileExtent): boolean {
  return (e.flags & FIEMAP_EXTENT.SHARED) !== 0 && (e.flags & ~TRUSTED_FLAGS) === 0;
}
