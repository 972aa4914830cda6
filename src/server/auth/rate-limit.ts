/**
 * Login rate limit. Every attempt is counted when it starts, before its password is hashed (`begin`,
 * synchronous, so parallel attempts cannot slip past a check that a slower hash would record only
 * later). Within a sliding window (default 60 s) at most `perAddress` attempts per client address
 * (default 5) and `global` attempts from all addresses together (default 60) are let through; more
 * are refused with 429 and Retry-After until the oldest leaves the window, whether the password is
 * right or not. A successful login clears its address and gives its attempt back to the global count.
 *
 * Memory stays bounded: at most `maxTracked` addresses (default 10 000). To make room, addresses with
 * no attempt left in the window go first, then the least recently seen address that is not blocked;
 * a blocked address is never forgotten before its window ends (if every tracked address is blocked,
 * a new one is refused). The address is Fastify's `request.ip`: behind a reverse proxy set
 * `trustProxy` so it is the client's, not the proxy's.
 */
import { ApiError } from '../errors.js';
import type { Clock } from '../deps.js';

export interface LoginLimits {
  perAddress: number;
  global: number;
  windowMs: number;
  maxTracked: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = { perAddress: 5, global: 60, windowMs: 60_000, maxTracked: 10_000 };

/** An attempt let through: call `succeeded()` when its password was right. */
export interface LoginAttempt {
  succeeded(): void;
}

export class LoginLimiter {
  /** address -> times of its attempts in the window; in the order of their last attempt (least recent first) */
  private readonly byAddress = new Map<string, number[]>();
  /** times of the attempts in the window from every address, oldest first */
  private readonly everyone: number[] = [];
  private readonly limits: LoginLimits;

  constructor(
    private readonly clock: Clock,
    limits: Partial<LoginLimits> = {},
  ) {
    this.limits = { ...DEFAULT_LOGIN_LIMITS, ...limits };
  }

  /** Counts an attempt from `address`; throws RATE_LIMITED (with the seconds to wait) when over a limit. */
  begin(address: string): LoginAttempt {
    const now = this.clock();
    const mine = this.forget(this.byAddress.get(address) ?? [], now);
    const waitMine = this.wait(mine, this.limits.perAddress, now);
    if (waitMine > 0) throw limited(`too many login attempts from ${address}; try again in ${waitMine} s`, waitMine);
    this.forget(this.everyone, now);
    const waitAll = this.wait(this.everyone, this.limits.global, now);
    if (waitAll > 0) throw limited(`too many login attempts from all addresses; try again in ${waitAll} s`, waitAll);
    this.track(address, mine, now);
    mine.push(now);
    this.everyone.push(now);
    return { succeeded: () => this.succeeded(address, now) };
  }

  /** Addresses tracked now (for tests and metrics). */
  get tracked(): number {
    return this.byAddress.size;
  }

  private succeeded(address: string, at: number): void {
    this.byAddress.delete(address);
    const i = this.everyone.lastIndexOf(at);
    if (i >= 0) this.everyone.splice(i, 1);
  }

  /** Marks the address as just seen (the end of the map's order), making room when it is new. */
  private track(address: string, times: number[], now: number): void {
    if (!this.byAddress.delete(address) && this.byAddress.size >= this.limits.maxTracked) this.makeRoom(address, now);
    this.byAddress.set(address, times);
  }

  /** The map is in the order of each address's last counted attempt, so the stale ones are at its front. */
  private makeRoom(address: string, now: number): void {
    for (const [a, times] of this.byAddress) {
      if (this.forget(times, now).length > 0) break;
      this.byAddress.delete(a);
    }
    if (this.byAddress.size < this.limits.maxTracked) return;
    for (const [a, times] of this.byAddress) {
      if (this.forget(times, now).length < this.limits.perAddress) {
        this.byAddress.delete(a);
        return;
      }
    }
    const wait = Math.ceil(this.limits.windowMs / 1000);
    throw limited(`too many addresses are blocked after failed logins; ${address} may try again in ${wait} s`, wait);
  }

  /** Drops the times that left the window (in place); returns the list. */
  private forget(times: number[], now: number): number[] {
    const since = now - this.limits.windowMs;
    let old = 0;
    while (old < times.length && (times[old] as number) <= since) old++;
    times.splice(0, old);
    return times;
  }

  /** Seconds until one more attempt fits under `max` (0: now). */
  private wait(times: number[], max: number, now: number): number {
    if (times.length < max) return 0;
    const oldestThatCounts = times[times.length - max] as number;
    return Math.max(1, Math.ceil((oldestThatCounts + this.limits.windowMs - now) / 1000));
  }
}

function limited(message: string, seconds: number): ApiError {
  return new ApiError('RATE_LIMITED', message, { retryAfterSeconds: seconds });
}
