/**
 * The guests of a remote datastore (GET /api/v1/stores/<store>/guests): what a sync of "all guests"
 * pulls. A function beside RemoteStore, over its own short-lived connection, so that RemoteStore's
 * file stays as it is; it takes the answer as `[{id, ...}]` or as `["101", ...]`.
 */
import { isGuestId } from '../../core/index.js';
import { answerJson, badAnswer } from './remote-errors.js';
import { type RemoteStoreOptions, resolveOptions } from './store-options.js';
import { Wire, type WireStats } from './wire.js';

/** The ids of the guests with versions in the store, ascending, and the bytes that asking took on the wire. */
export async function listRemoteGuests(options: RemoteStoreOptions, signal?: AbortSignal): Promise<{ guests: string[]; stats: WireStats }> {
  const opts = resolveOptions({ ...options, maxInFlight: 1 });
  const wire = new Wire(opts);
  try {
    const answer = await wire.call({
      method: 'GET',
      path: `/api/v1/stores/${encodeURIComponent(opts.store)}/guests`,
      idempotent: true,
      timeoutMs: opts.timeouts.idleMs,
      signal,
      place: { doing: 'listing the guests', node: opts.node, store: opts.store },
    });
    return { guests: guestIds(answerJson(answer.body, opts.node, 'the guest list'), opts.node, answer.body), stats: { ...wire.stats } };
  } finally {
    wire.close();
  }
}

function guestIds(list: unknown, node: string, body: Buffer): string[] {
  if (!Array.isArray(list)) throw badAnswer(node, 'the guest list', body);
  const ids = list.map((entry: unknown) => (typeof entry === 'string' ? entry : (entry as { id?: unknown } | null)?.id));
  if (!ids.every((id): id is string => typeof id === 'string' && isGuestId(id))) throw badAnswer(node, 'the guest list', body);
  return [...new Set(ids)].sort((a, b) => Number(a) - Number(b));
}
