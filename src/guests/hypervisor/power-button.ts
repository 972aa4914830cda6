/**
 * Pressing the ACPI power button until the guest is off, as a person at the console would. A guest
 * that is still booting loses a press (QEMU drops it while the OS has not enabled the power-button
 * event; a booting OS has nobody listening to it yet), so a single press can leave a job waiting for
 * its whole stop timeout. While waiting, the button is pressed again `repeatMs` after the last press
 * (default 5 s; 0 = once), and each repeated press is an info line in the job's log:
 *   `guest 101 did not react to the ACPI button yet; pressing it again (2nd press after 5 s)`
 * (the time counts from the first press). A guest shutting down already ignores further presses.
 * The qemu and libvirt drivers use `pressUntilOff`; proxmox repeats `qm shutdown` (see proxmox.ts).
 */
import { ColdvaultError, type TaskLog } from '../../core/index.js';

export const DEFAULT_BUTTON_REPEAT_MS = 5_000;

export interface ButtonPresser {
  vmid: string;
  timeoutMs: number;
  /** press again this long after the last press while the guest is on; 0 = never */
  repeatMs: number;
  /** how often to ask whether the guest is off */
  pollMs: number;
  /** presses the button; `count` is 1 for the first press */
  press(count: number): Promise<void>;
  isOff(): Promise<boolean>;
  /** waits up to `ms`; may return early (e.g. QEMU's socket closed) */
  pause(ms: number): Promise<unknown>;
  log?: TaskLog;
}

/** Presses, then waits for the guest to be off, pressing again every repeatMs; false at the timeout. */
export async function pressUntilOff(p: ButtonPresser): Promise<boolean> {
  const first = Date.now();
  const deadline = first + p.timeoutMs;
  let last = first;
  let count = 1;
  await p.press(count);
  while (!(await p.isOff())) {
    const now = Date.now();
    if (now >= deadline) return false;
    const next = p.repeatMs > 0 ? last + p.repeatMs : Number.POSITIVE_INFINITY;
    if (now < next) {
      await p.pause(Math.min(p.pollMs, deadline - now, next - now));
      continue;
    }
    count += 1;
    last = now;
    p.log?.info(pressAgainMessage(p.vmid, count, now - first));
    await p.press(count);
  }
  return true;
}

/** `guest 101 did not react to the ACPI button yet; pressing it again (2nd press after 5 s)` */
export function pressAgainMessage(vmid: string, count: number, sinceFirstMs: number): string {
  return `guest ${vmid} did not react to the ACPI button yet; pressing it again (${ordinal(count)} press after ${Math.round(sinceFirstMs / 1000)} s)`;
}

function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  const suffix = teen ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

/** The repeat interval from the config's `buttonRepeatSeconds` (undefined: the default); CONFIG_INVALID when it is not 0 or >= 1. */
export function buttonRepeatMs(seconds: unknown): number | undefined {
  if (seconds === undefined) return undefined;
  if (typeof seconds === 'number' && Number.isFinite(seconds) && (seconds === 0 || seconds >= 1)) return seconds * 1000;
  throw new ColdvaultError(
    'CONFIG_INVALID',
    `hypervisor.buttonRepeatSeconds must be 0 (press the power button once) or a number of seconds >= 1, not ${JSON.stringify(seconds)}`,
  );
}
