/**
 * Locks on an S3 datastore, without atomic rename or conditional writes: each holder PUTs an object
 * of its own under `locks/<name>/`, then LISTs that folder (and the folders it excludes); it holds the
 * lock when no other FRESH lock object is there, else it deletes its own and waits. Two that start
 * together may both back off (each sees the other), never both hold: each PUT happens before its own
 * LIST, and listings are strongly consistent (AWS S3, a single-site RGW).
 *
 * Freshness: a holder re-PUTs its object every REFRESH_MS; an object whose LastModified (the
 * service's clock, never this machine's) is older than STALE_MS is a dead holder's and is ignored, and
 * so is one that names this host and boot and a pid that is gone (a run killed here: the next run
 * need not wait an hour). A durable hold (a live restore's read lease, `whileFile`) is never stale by
 * time: it holds while its file exists on its host, and is ended by whoever finishes that restore.
 * A holder that was frozen (SIGSTOP, a suspended VM) past STALE_MS must not act on what it held:
 * `actWithin` first re-PUTs the object and fails with LOCKED when something else holds the lock by now; an
 * act that must be covered by the lock (a version's manifest, a gc's deletes) starts within ACT_MS of
 * a confirm (`actWithin`, which aborts it after ACT_MS), and S3 refuses a request whose signature
 * time is more than 15 minutes from its own clock; with this machine's clock off by at most those 15
 * minutes (else no request passes at all), every such act has landed by lastRefresh + ACT_MS + 30 min,
 * before lastRefresh + STALE_MS, when anyone may first treat the lock as dead. The argument in full
 * is in index.ts.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ColdvaultError } from '../../core/index.js';
import type { S3Client } from '../../targets/index.js';
import { holderAlive, thisBoot, thisHost } from '../pid.js';

export const REFRESH_MS = 60_000;
/** how often a holder looks before it believes another holds its lock now (one trying shows for a moment) */
const CONFIRM_LOOKS = 4;
export const STALE_MS = 60 * 60_000;
/** an act covered by a lock starts within this long of the lock's last confirm */
export const ACT_MS = 5 * 60_000;

export interface LockBody {
  purpose: string;
  host: string;
  boot?: string;
  pid: number;
  created: string;
  /** a durable hold: alive while this file exists on `host`, never stale by time and never refreshed (pid.ts) */
  whileFile?: string;
}

export interface HeldS3Lock {
  readonly key: string;
  /** re-PUTs the lock now and checks nobody else holds it (LOCKED when they do); then `fn` must start at once */
  actWithin<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T>;
  release(): Promise<void>;
  /** keeps the object but stops re-PUTting it: a durable hold, which a later process may end (S3Locks.drop) */
  stopRefreshing(): void;
}

export interface AcquireRequest {
  /** `guest-101`, `writers`, `gc` */
  name: string;
  purpose: string;
  /** other lock folders whose fresh objects also keep this one from being held (gc: `writers`; a writer: `gc`) */
  excludedBy: string[];
  /** shared: other holders of `name` itself do not exclude (the writers' registration) */
  shared?: boolean;
  waitMs: number;
  /** a durable hold (a live restore's read lease): held while this file exists on this host */
  whileFile?: string;
}

export class S3Locks {
  /** STALE_MS; shorter only in tests (a lock that ages in seconds) */
  private readonly staleMs: number;

  constructor(
    private readonly client: S3Client,
    private readonly prefix: string,
    options: { staleMs?: number } = {},
  ) {
    this.staleMs = options.staleMs ?? STALE_MS;
  }

  async acquire(req: AcquireRequest): Promise<HeldS3Lock> {
    const key = `${this.prefix}locks/${req.name}/${randomUUID()}.json`;
    const body: LockBody = { purpose: req.purpose, host: thisHost, boot: thisBoot, pid: process.pid, created: new Date().toISOString() };
    if (req.whileFile !== undefined) body.whileFile = req.whileFile;
    const deadline = Date.now() + req.waitMs;
    for (;;) {
      const blocker = await this.tryOnce(key, body, req);
      if (!blocker) return new Held(this, key, body, req);
      await this.client.delete(key);
      if (Date.now() >= deadline)
        throw new ColdvaultError('LOCKED', `${req.purpose}: ${await this.describe(blocker)} (lock ${blocker} in ${this.client.where})`);
      await sleep(500 + Math.random() * 1500);
    }
  }

  /** PUTs `key`, then answers the key of a fresh lock that keeps it from being held, if any. */
  async tryOnce(key: string, body: LockBody, req: Pick<AcquireRequest, 'name' | 'excludedBy' | 'shared'>): Promise<string | undefined> {
    const put = await this.client.put(key, Buffer.from(JSON.stringify(body)), { signBody: true, contentType: 'application/json' });
    const now = put.date ?? new Date();
    const folders = req.shared ? req.excludedBy : [req.name, ...req.excludedBy];
    for (const folder of folders) {
      for (const other of await this.fresh(folder, now, key)) return other;
    }
    return undefined;
  }

  /**
   * The lock objects under `locks/<name>/` whose holders may be alive: refreshed within STALE_MS, and
   * not a dead process of this host; or a durable hold (`whileFile`) whatever its age, unless it is
   * this host's and its file is gone.
   */
  async fresh(name: string, now: Date, except?: string): Promise<string[]> {
    const found: string[] = [];
    for await (const o of this.client.list(`${this.prefix}locks/${name}/`)) {
      if (o.key === except) continue;
      const stale = now.getTime() - o.lastModified.getTime() >= this.staleMs;
      const body = await this.body(o.key);
      if (stale && body?.whileFile === undefined) continue;
      if (body && !holderAlive(body)) continue;
      found.push(o.key);
    }
    return found;
  }

  /** Ends a durable hold that another process took (by the key it was given). */
  async drop(key: string): Promise<void> {
    if (!key.startsWith(`${this.prefix}locks/`)) throw new ColdvaultError('USAGE', `'${key}' is not a lock object of this datastore`);
    await this.client.delete(key);
  }

  private async body(key: string): Promise<LockBody | undefined> {
    try {
      return JSON.parse((await this.client.get(key)).toString('utf8')) as LockBody;
    } catch {
      return undefined; // gone meanwhile, or not ours to read: counted as alive by its time alone
    }
  }

  /** "held by <purpose> on <host> (pid N) since <time>" */
  async describe(key: string): Promise<string> {
    const b = await this.body(key);
    if (b?.whileFile) return `held by ${b.purpose} on ${b.host} while '${b.whileFile}' exists there, since ${b.created}`;
    return b ? `held by ${b.purpose} on ${b.host} (pid ${b.pid}) since ${b.created}` : 'held by another run';
  }

  get s3(): S3Client {
    return this.client;
  }
}

class Held implements HeldS3Lock {
  private timer?: NodeJS.Timeout;
  private released = false;

  constructor(
    private readonly locks: S3Locks,
    readonly key: string,
    private readonly body: LockBody,
    private readonly req: AcquireRequest,
  ) {
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), REFRESH_MS);
    this.timer.unref();
  }

  async actWithin<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    // another run that tries for the lock shows for a moment before it backs off: look a few times
    let blocker: string | undefined;
    for (let look = 0; look < CONFIRM_LOOKS; look++) {
      if (look > 0) await sleep(1000);
      blocker = await this.locks.tryOnce(this.key, this.body, this.req);
      if (!blocker) return fn(AbortSignal.timeout(ACT_MS));
    }
    throw new ColdvaultError('LOCKED', `${this.req.purpose}: the lock was lost while this run was held up: ${await this.locks.describe(blocker as string)}`);
  }

  private async refresh(): Promise<void> {
    if (this.released) return;
    await this.locks.s3.put(this.key, Buffer.from(JSON.stringify(this.body)), { signBody: true, contentType: 'application/json' });
  }

  stopRefreshing(): void {
    this.released = true;
    clearInterval(this.timer);
  }

  async release(): Promise<void> {
    this.released = true;
    clearInterval(this.timer);
    await this.locks.s3.delete(this.key).catch(() => undefined);
  }
}
