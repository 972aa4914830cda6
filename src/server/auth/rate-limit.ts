/**
 * Login rate limit: at most `max` failed logins per client address in a sliding window (default 5 per
 * minute); further attempts are refused with 429 and Retry-After until the oldest failure leaves the
 * window, whether the password is right or not. A successful login clears the address's failures.
 * Memory stays bounded: stale addresses are dropped, and at most 10 000 are tracked.
 */
import type { Clock } from '../deps.js';

export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly clock: Clock, private readonly max = 5, private readonly windowMs = 60_000) {}

  /** Seconds to wait before `address` may try again; 0 when it may try now. */
  retryAfter(address: string): number {
    const recent = this.recent(address);
    if (recent.length < this.max) return 0;
    return Math.max(1, Math.ceil(((recent[recent.length - this.max] as number) + this.windowMs - this.clock()) / 1000));
  }

  fail(address: string): void {
    if (this.failures.size >= 10_000) this.sweep();
    this.failures.set(address, [...this.recent(address), this.clock()]);
  }

  succeed(address: string): void {
    this.failures.delete(address);
  }

  private recent(address: string): number[] {
    const since = this.clock() - this.windowMs;
    return (this.failures.get(address) ?? []).filter((t) => t > since);
  }

  private sweep(): void {
    for (const address of [...this.failures.keys()]) if (this.recent(address).length === 0) this.failures.delete(address);
    if (this.failures.size >= 10_000) this.failures.clear();
  }
}
