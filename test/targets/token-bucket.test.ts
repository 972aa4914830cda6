/**
 * The bandwidth limit's token bucket on a virtual clock (a test clock, so no assertion depends on how
 * fast this machine is): bytes beyond the burst pass at the rate and no faster, several takers share
 * one rate, an idle bucket banks no more than its burst, takes within the burst never wait.
 */
import { describe, expect, it } from 'vitest';
import { SLICE_BYTES, TokenBucket, type BucketClock } from '../../dist/targets/index.js';

const MiB = 1024 * 1024;

/** A clock that moves only when told to, or when a sleeper's time comes (sleeps side by side overlap). */
function virtualClock(): BucketClock & { advance(ms: number): void } {
  let now = 0;
  return {
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
    sleep: (ms) => {
      const until = now + ms;
      return Promise.resolve().then(() => {
        now = Math.max(now, until);
      });
    },
  };
}

async function takeAll(bucket: TokenBucket, bytes: number): Promise<void> {
  for (let at = 0; at < bytes; at += SLICE_BYTES) await bucket.take(Math.min(SLICE_BYTES, bytes - at));
}

describe('TokenBucket', () => {
  it('lets the bytes beyond its burst through at the rate: 10 MiB at 1 MiB/s with a 64 KiB burst take 9.9375 s', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket(MiB, { clock, burst: SLICE_BYTES });
    await takeAll(bucket, 10 * MiB);
    expect(clock.now()).toBeCloseTo(((10 * MiB - SLICE_BYTES) / MiB) * 1000, 6);
    expect(bucket.stats.takenBytes).toBe(10 * MiB);
    expect(bucket.stats.waitedMs).toBeCloseTo(clock.now(), 6);
  });

  it('shares one rate between takers side by side: 4 x 2 MiB at 2 MiB/s end after (8 MiB - burst) / rate', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket(2 * MiB, { clock, burst: 128 * 1024 });
    await Promise.all([0, 1, 2, 3].map(() => takeAll(bucket, 2 * MiB)));
    expect(clock.now()).toBeCloseTo(((8 * MiB - 128 * 1024) / (2 * MiB)) * 1000, 6);
  });

  it('an idle bucket banks no more than its burst', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket(MiB, { clock, burst: MiB / 2 });
    clock.advance(3_600_000);
    const start = clock.now();
    await takeAll(bucket, 4 * MiB);
    expect(clock.now() - start).toBeCloseTo(3.5 * 1000, 6);
  });

  it('takes within the burst do not wait; the burst is at least one slice', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket(MiB, { clock });
    expect(bucket.burst).toBe(MiB / 10);
    await takeAll(bucket, 100_000);
    expect(bucket.stats.waits).toBe(0);
    expect(clock.now()).toBe(0);
    expect(new TokenBucket(1000).burst).toBe(SLICE_BYTES);
    expect(() => new TokenBucket(0)).toThrow(RangeError);
    expect(TokenBucket.mibPerSecond(3).rate).toBe(3 * MiB);
  });
});
