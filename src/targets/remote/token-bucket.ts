/**
 * TokenBucket: the bandwidth limit of a push (`bwlimit`, MiB/s, as coldvault logs its rates). One token
 * is one request body byte; tokens come back at `rate` per second up to `burst`. A taker that finds
 * too few runs the bucket into debt and sleeps until its own share is paid back, so takers are served
 * in the order they came and several requests in flight share one rate. Bodies are taken in slices
 * (SLICE_BYTES) as they are written, so a 4 MiB chunk does not leave at link speed in one burst.
 * The clock is injectable: a test runs the bucket on a virtual clock and checks its accounting.
 */

/** Where the bucket takes its time from and how it waits (the system's by default). */
export interface BucketClock {
  /** milliseconds, monotonic */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemBucketClock: BucketClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Bytes a body is metered in: small against any sensible rate, large against a write's overhead. */
export const SLICE_BYTES = 64 * 1024;

/** A rate in MiB/s -> bytes per second. */
export const MIB_PER_SECOND = 1024 * 1024;

export interface BucketStats {
  /** bytes taken (every metered body byte) */
  takenBytes: number;
  /** takes that had to wait, and the milliseconds they were told to wait, summed */
  waits: number;
  waitedMs: number;
}

export class TokenBucket {
  readonly stats: BucketStats = { takenBytes: 0, waits: 0, waitedMs: 0 };
  /** bytes per second */
  readonly rate: number;
  readonly burst: number;
  private readonly clock: BucketClock;
  private tokens: number;
  private last: number;

  /** `rate` in bytes per second; `burst` defaults to a tenth of a second's worth, at least one slice. */
  constructor(rate: number, opts: { burst?: number; clock?: BucketClock } = {}) {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`a bandwidth limit must be a positive number of bytes per second, not ${rate}`);
    this.rate = rate;
    this.clock = opts.clock ?? systemBucketClock;
    this.burst = Math.max(opts.burst ?? rate / 10, SLICE_BYTES);
    this.tokens = this.burst;
    this.last = this.clock.now();
  }

  /** A bucket for `mibPerSecond` MiB/s (the `bwlimit` setting). */
  static mibPerSecond(mibPerSecond: number, clock?: BucketClock): TokenBucket {
    return new TokenBucket(mibPerSecond * MIB_PER_SECOND, { clock });
  }

  /** Resolves once `bytes` may be sent. */
  async take(bytes: number): Promise<void> {
    this.refill();
    this.tokens -= bytes;
    this.stats.takenBytes += bytes;
    if (this.tokens >= 0) return;
    const waitMs = (-this.tokens / this.rate) * 1000;
    this.stats.waits++;
    this.stats.waitedMs += waitMs;
    await this.clock.sleep(waitMs);
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }
}
