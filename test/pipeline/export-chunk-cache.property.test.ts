/**
 * The export's chunk cache lends pooled buffers (src/pipeline/export/chunk-cache.ts): a buffer goes
 * back to its pool only when its chunk left the cache AND no reader holds it any more, so bytes a
 * client is being sent are never overwritten by the next chunk read into that buffer (wrong data on
 * the wire). fast-check drives random interleavings of reads (of a small set of chunks, so there are
 * hits, misses and evictions), releases and failed loads against a pool that hands out the most
 * recently returned buffer first and fills it with the chunk it is loaded for, as the chunk reader's
 * pool does; every reader checks at its release that its bytes are still its chunk's. At the end,
 * with every reader done, the cache holds at most its bound and every other buffer is back.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkCache } from '../../dist/pipeline/export/chunk-cache.js';

const SIZE = 16;

class CountingPool {
  private readonly free: Uint8Array[] = [];
  made = 0;
  out = new Set<Uint8Array>();

  take(fill: number): Uint8Array {
    const buf = this.free.pop() ?? (this.made++, new Uint8Array(SIZE));
    buf.fill(fill);
    this.out.add(buf);
    return buf;
  }

  give(buf: Uint8Array): void {
    expect(this.out.has(buf)).toBe(true); // never given back twice
    this.out.delete(buf);
    this.free.push(buf);
  }
}

type Step = { kind: 'read'; chunk: number; fail: boolean } | { kind: 'release'; which: number };

const steps = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant('read' as const), chunk: fc.integer({ min: 1, max: 6 }), fail: fc.integer({ min: 0, max: 4 }).map((n) => n === 0) }),
    fc.record({ kind: fc.constant('release' as const), which: fc.nat() }),
  ),
  { maxLength: 80 },
);

describe('export chunk cache', () => {
  it('never hands a buffer back while a reader holds it; every buffer is back once readers are done and chunks evicted', async () => {
    await fc.assert(
      fc.asyncProperty(steps, fc.integer({ min: 1, max: 4 }), async (plan: Step[], bound: number) => {
        const pool = new CountingPool();
        const cache = new ChunkCache(bound);
        const held: Array<{ chunk: number; data: Uint8Array; release: () => void }> = [];
        for (const step of plan) {
          if (step.kind === 'release') {
            const reader = held.splice(step.which % Math.max(1, held.length), 1)[0];
            if (!reader) continue;
            expect(reader.data.every((b) => b === reader.chunk)).toBe(true);
            reader.release();
            reader.release(); // a second release does nothing
            continue;
          }
          const got = await cache
            .get(`d:${step.chunk}`, async () => {
              if (step.fail) throw new Error('damaged');
              const buf = pool.take(step.chunk);
              return { plain: buf, release: () => pool.give(buf) };
            })
            .catch(() => undefined);
          if (got) held.push({ chunk: step.chunk, ...got });
        }
        for (const reader of held) {
          expect(reader.data.every((b) => b === reader.chunk)).toBe(true);
          reader.release();
        }
        await new Promise((r) => setImmediate(r));
        expect(cache.size).toBeLessThanOrEqual(bound);
        expect(pool.out.size).toBe(cache.size); // what the cache lists, and nothing else, is out
      }),
      { numRuns: 300 },
    );
  });
});
