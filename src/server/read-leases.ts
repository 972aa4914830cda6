/**
 * Read leases held for readers on other nodes (the remote datastore protocol's reader half): a local
 * restore registers a read lease on the version it reads, so prune keeps the version, and with it its
 * chunks, until the restore ends (datastore/version-use.ts). A node restoring or verifying a version of
 * this server's store asks the server to hold that lease for it: POST .../versions/{version}/lease.
 *
 * The lease is registered by the serve process (live while serve runs, as a local reader's is while
 * its process runs). It ends with DELETE, after `idleMs` (config uploadIdleSeconds) without a
 * keepalive from its reader (the client sends one every third of that), or when serve shuts down. A
 * reader that dies therefore holds a version at most `idleMs` past its death; a lease that ended under a
 * slow reader only means prune may remove the version, and the reader then fails with CHUNK_MISSING
 * (never reads wrong data: every chunk is checked by its name).
 *
 * Order, as for a local reader: register the lease, then look whether prune is removing the version
 * (leaseVersion waits while it is), then whether the version is there (VERSION_NOT_FOUND otherwise).
 * On an S3 datastore the lease is the `read-<vmid>-<version>` lock object a local restore from the
 * bucket takes (store-readers.ts), which S3 prune respects; this serve refreshes it while it holds it.
 */
import { randomBytes } from 'node:crypto';
import { ColdvaultError } from '../core/index.js';
import type { KnownStore } from './paths.js';
import type { StoreReader } from './store-readers.js';

export interface LeaseRequest {
  /** the configured store of the URL */
  ref: KnownStore;
  principal: string;
  guestId: string;
  version: number;
}

interface Held {
  req: LeaseRequest;
  lock: { release(): Promise<void> };
  timer: NodeJS.Timeout;
}

/** How long `take` waits while prune is removing the version before it answers LOCKED. */
const REMOVAL_WAIT_MS = 10_000;

export class ReadLeases {
  private readonly held = new Map<string, Held>();

  constructor(private readonly opts: { idleMs: number; openStore: (ref: KnownStore) => Promise<StoreReader> }) {}

  get idleMs(): number {
    return this.opts.idleMs;
  }

  /** Leases version `version` of guest `guestId` for `principal`; VERSION_NOT_FOUND when it is not there. */
  async take(req: LeaseRequest): Promise<string> {
    const store = await this.opts.openStore(req.ref);
    const purpose = `read by ${req.principal} (a restore or verify on another node)`;
    const lock = await store.lease(req.guestId, req.version, purpose, REMOVAL_WAIT_MS);
    const there = await store.listVersionNumbers(req.guestId).then(
      (versions) => versions.includes(req.version),
      async (err: unknown) => {
        await lock.release();
        throw err;
      },
    );
    if (!there) {
      await lock.release();
      throw new ColdvaultError('VERSION_NOT_FOUND', `version ${req.version} of guest ${req.guestId} is not in datastore '${req.ref.name}'`);
    }
    const id = randomBytes(16).toString('base64url');
    this.held.set(id, { req, lock, timer: this.expiry(id) });
    return id;
  }

  /** Restarts the idle clock of lease `id`; NOT_FOUND when it ended (expired or released) or is another's. */
  keepalive(id: string, store: string, principal: string): void {
    const held = this.own(id, store, principal);
    clearTimeout(held.timer);
    held.timer = this.expiry(id);
  }

  /** Ends lease `id` (prune may remove the version again); NOT_FOUND as keepalive. */
  async release(id: string, store: string, principal: string): Promise<void> {
    this.own(id, store, principal);
    await this.end(id);
  }

  /** How many leases are held (tests, status). */
  get size(): number {
    return this.held.size;
  }

  /** Ends every lease (the server is shutting down). */
  async releaseAll(): Promise<void> {
    await Promise.all([...this.held.keys()].map((id) => this.end(id)));
  }

  private own(id: string, store: string, principal: string): Held {
    const held = this.held.get(id);
    if (held && held.req.ref.name === store && held.req.principal === principal) return held;
    throw new ColdvaultError(
      'LEASE_NOT_FOUND',
      `there is no read lease ${id} of ${principal} in datastore '${store}' (released, or ended after ${this.opts.idleMs / 1000} s without a keepalive)`,
    );
  }

  private expiry(id: string): NodeJS.Timeout {
    const timer = setTimeout(() => void this.end(id), this.opts.idleMs);
    timer.unref();
    return timer;
  }

  private async end(id: string): Promise<void> {
    const held = this.held.get(id);
    if (!held) return;
    this.held.delete(id);
    clearTimeout(held.timer);
    await held.lock.release();
  }
}
