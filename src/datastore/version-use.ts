/**
 * Versions in use: restore and export read a version for minutes or hours, and prune must not remove
 * it meanwhile (its chunks would go with the next gc); a reader must not start on a version that
 * prune is removing; prune and protect of one guest must not cross (a version protected while prune
 * decides would be removed anyway).
 *
 * Read leases against removal. Each side announces itself first, then looks at the other, so
 * whatever the interleaving at least one of them sees the other:
 *   reader: register lease `read-<vmid>-<n>-*`, then look at lock `remove-<vmid>-<n>`:
 *           held -> drop the lease, wait, start over; free -> read (the version is there, or it is gone
 *           and the reader says VERSION_NOT_FOUND).
 *   prune:  take lock `remove-<vmid>-<n>`, then look for live leases `read-<vmid>-<n>-*`:
 *           any -> keep the version (logged), release; none -> remove the version, release.
 * Garbage collection needs nothing more: a leased version exists, so gc marks its chunks.
 * A durable hold (`options.whileFile`, a live restore's) is the same registration, alive while that
 * file exists rather than while its process runs (locks.ts), so the protocol above holds for it too.
 * A datastore that cannot be written (mounted read-only for a restore) cannot be pruned through that
 * mount either: the reader goes on without a lease.
 *
 * Retention: prune, the keep-N rotation of a backup and protect take lock `prune-<vmid>`, so the
 * protected flag prune reads is the one that holds when it removes.
 */
import { ColdvaultError, errnoCode } from '../core/index.js';
import { describeHolder, type HeldLock, type LockHolder } from './locks.js';
import type { Datastore } from './store.js';

const NO_LEASE: HeldLock = { path: '', release: () => Promise.resolve() };

/** Takes a read lease on a version; waits up to `waitMs` while prune is removing it. */
export async function leaseVersion(
  store: Datastore,
  guestId: string,
  version: number,
  purpose: string,
  waitMs = 60_000,
  options: { whileFile?: string } = {},
): Promise<HeldLock> {
  const deadline = store.clock.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    const lease = await registerLease(store, guestId, version, purpose, options);
    const remover = await store.locks.holder(removeLockName(guestId, version));
    if (!remover) return lease;
    await lease.release();
    if (store.clock.now() >= deadline) {
      throw new ColdvaultError('LOCKED', `version ${version} of guest ${guestId} is being removed by ${describeHolder(remover)}`);
    }
    await store.locks.pause(attempt, deadline);
  }
}

async function registerLease(store: Datastore, guestId: string, version: number, purpose: string, options: { whileFile?: string }): Promise<HeldLock> {
  try {
    return await store.locks.register(`${leasePrefix(guestId, version)}`, purpose, options);
  } catch (err) {
    if (errnoCode(err) === 'EROFS') return NO_LEASE;
    throw err;
  }
}

export type RemovalResult = { removed: true } | { removed: false; readers: LockHolder[] };

/** Removes a version unless a reader holds a lease on it. */
export async function removeVersionUnlessRead(store: Datastore, guestId: string, version: number, purpose: string): Promise<RemovalResult> {
  const lock = await store.locks.acquire(removeLockName(guestId, version), purpose);
  try {
    await store.checkpoint('prune:remove-locked');
    const readers = await store.locks.liveRegistrations(leasePrefix(guestId, version));
    if (readers.length > 0) return { removed: false, readers };
    await store.removeVersion(guestId, version);
    return { removed: true };
  } finally {
    await lock.release();
  }
}

/** The retention lock of a guest: prune, keep-N rotation and protect, one at a time. */
export function lockRetention(store: Datastore, guestId: string, purpose: string, waitMs = 60_000): Promise<HeldLock> {
  return store.locks.acquire(`prune-${guestId}`, purpose, waitMs);
}

const leasePrefix = (guestId: string, version: number): string => `read-${guestId}-${version}-`;
const removeLockName = (guestId: string, version: number): string => `remove-${guestId}-${version}`;
