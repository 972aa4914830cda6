/**
 * The start sequence the command-line drivers share: nothing to do when the guest runs; else run the
 * start command (its failure is START_FAILED), then poll the status until it says running or the
 * timeout passes (START_FAILED naming what was run and the last state).
 */
import { ColdvaultError, type GuestRunState, isColdvaultError } from '../../core/index.js';

export interface StartSteps {
  vmid: string;
  timeoutMs: number;
  pollMs: number;
  /** e.g. `'qm start'`, or `libvirt domain 'x' ... 'virsh start'`, for the timeout message */
  what: string;
  status: () => Promise<GuestRunState>;
  start: () => Promise<unknown>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startAndWait(s: StartSteps): Promise<void> {
  if ((await s.status()) === 'running') return;
  const deadline = Date.now() + s.timeoutMs;
  try {
    await s.start();
  } catch (err) {
    if (!isColdvaultError(err)) throw err;
    throw new ColdvaultError('START_FAILED', `starting guest ${s.vmid} failed: ${err.message}`, { cause: err });
  }
  for (;;) {
    const state = await s.status();
    if (state === 'running') return;
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new ColdvaultError(
        'START_FAILED',
        `starting guest ${s.vmid} failed: not running ${Math.round(s.timeoutMs / 1000)} s after ${s.what} (state: ${state})`,
      );
    }
    await sleep(Math.min(s.pollMs, left));
  }
}
