/**
 * The reading side of a read lease (server/read-leases.ts): RemoteStore.leaseVersion has the node hold
 * a version against prune while this process restores or verifies it, as a local reader's own lease
 * does (datastore/version-use.ts). A keep-alive goes every third of the node's idle time (a timer that
 * does not hold the process); release stops it and ends the lease. The node ends a lease by itself
 * only when this process is gone or cut off for its idle time; a lease ended under a reader that still
 * runs is no harm to the data: prune may then remove the version, and the read fails with
 * CHUNK_MISSING (every chunk is checked by its name).
 *
 * Contracts: take is not retried (a lost answer only leaves a lease that ends idle); keep-alive and
 * release are idempotent and retried; a release of a lease the node already ended is fine.
 */
import { isColdvaultError } from '../../core/index.js';
import { startKeepAlive } from './keep-alive.js';
import { answerJson, badAnswer } from './remote-errors.js';
import type { WireAnswer, WireRequest } from './wire.js';

export interface RemoteLease {
  /** the node's id of the lease */
  readonly id: string;
  /** stops the keep-alive and ends the lease on the node */
  release(): Promise<void>;
}

/** What the calls need of their RemoteStore. */
export interface LeaseCalls {
  node: string;
  storePath: string;
  call(req: Omit<WireRequest, 'place' | 'timeoutMs'>, doing: string): Promise<WireAnswer>;
}

export async function leaseRemoteVersion(calls: LeaseCalls, guestId: string, version: number): Promise<RemoteLease> {
  const answer = await calls.call(
    { method: 'POST', path: `${calls.storePath}/guests/${encodeURIComponent(guestId)}/versions/${version}/lease`, idempotent: false },
    `leasing version ${version} of guest ${guestId} against prune`,
  );
  const { lease, idleTimeoutSeconds } = answerJson(answer.body, calls.node, 'the lease');
  if (typeof lease !== 'string' || typeof idleTimeoutSeconds !== 'number') throw badAnswer(calls.node, 'the lease', answer.body);
  const path = `${calls.storePath}/leases/${encodeURIComponent(lease)}`;
  const timer = startKeepAlive((req, doing) => calls.call(req, doing), `${path}/keepalive`, idleTimeoutSeconds, 'keeping a read lease', ['LEASE_NOT_FOUND']);
  return {
    id: lease,
    release: async () => {
      clearInterval(timer);
      try {
        await calls.call({ method: 'DELETE', path, idempotent: true }, `ending the lease on version ${version} of guest ${guestId}`);
      } catch (err) {
        if (!isColdvaultError(err, 'LEASE_NOT_FOUND')) throw err; // ended by the node already
      }
    },
  };
}
