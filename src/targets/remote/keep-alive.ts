/**
 * The keep-alive of something a node holds for this process (an external disk attached for a push,
 * a read lease): a POST to `path` every third of the node's idle time, one at a time, on a timer that
 * does not hold the process; it stops by itself once the node answers one of `endCodes` (it no longer
 * knows the thing) or the client was closed (ABORTED). Other failures are left to the next tick.
 */
import { type ErrorCode, isColdvaultError } from '../../core/index.js';
import type { WireAnswer, WireRequest } from './wire.js';

export type KeepAliveCall = (req: Omit<WireRequest, 'place' | 'timeoutMs'>, doing: string) => Promise<WireAnswer>;

export function startKeepAlive(call: KeepAliveCall, path: string, idleTimeoutSeconds: number, doing: string, endCodes: readonly ErrorCode[]): NodeJS.Timeout {
  const ends: readonly ErrorCode[] = [...endCodes, 'ABORTED'];
  let busy = false;
  const timer = setInterval(
    () => {
      if (busy) return;
      busy = true;
      call({ method: 'POST', path, idempotent: true }, doing)
        .catch((err: unknown) => {
          if (ends.some((code) => isColdvaultError(err, code))) clearInterval(timer);
        })
        .finally(() => {
          busy = false;
        });
    },
    (idleTimeoutSeconds * 1000) / 3,
  );
  timer.unref();
  return timer;
}
