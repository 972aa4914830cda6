/**
 * The bound on boot tests at once, across every coldvault process of a host sharing a state dir
 * (CLI commands and the server's jobs): `max` slot locks in `<stateDir>/boot-tests/slots/` (a lock
 * names its process; one left by a process that died is taken over). A test takes a free slot, or
 * waits for one (checked every second) until it is aborted.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ColdvaultError, type TaskLog } from '../../core/index.js';
import { LockDir, type HeldLock } from '../../datastore/index.js';

/** Each test guest is a QEMU with the guest's memory: two at once by default. */
export const DEFAULT_MAX_BOOT_TESTS = 2;

export async function takeBootSlot(stateDir: string, max: number, purpose: string, log: TaskLog, abort?: AbortSignal): Promise<HeldLock> {
  const dir = join(stateDir, 'boot-tests', 'slots');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const locks = new LockDir(dir);
  for (let waited = false; ; waited = true) {
    for (let n = 0; n < max; n++) {
      const held = await locks.acquire(`slot-${n}`, purpose, 0).catch(() => undefined);
      if (held) return held;
    }
    if (!waited) log.info(`waiting for a boot test slot: ${max} boot test(s) already run on this host (state dir '${stateDir}')`);
    if (abort?.aborted) throw new ColdvaultError('ABORTED', 'the boot test was interrupted while it waited for a slot');
    await new Promise((r) => setTimeout(r, 1_000));
  }
}
