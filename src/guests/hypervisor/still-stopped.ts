/**
 * The check that a guest coldvault read while it was off is still off afterwards: after a stop-mode
 * backup has read the disks (and, with cold snapshots, once the snapshot is taken). A guest started
 * in between may have written to its disks while they were read, so what was read is no consistent
 * image; the caller discards it. Polling cannot see a guest that was started and stopped again in
 * between: that is what the hypervisor's lock is for, where there is one (Proxmox `lock: backup`).
 */
import { ColdvaultError, describeError, type GuestRunState, type HypervisorDriver } from '../../core/index.js';

export interface StillStoppedCheck {
  /** when it must have stayed off, e.g. 'while its disks were being read' */
  during: string;
  /** what the caller does about a failed check, e.g. 'this version is discarded' */
  outcome: string;
}

/**
 * Resolves when the hypervisor reports the guest stopped; else GUEST_STARTED naming the status it
 * has, or HYPERVISOR when the status cannot be read (not knowing is not "still stopped").
 */
export async function checkStillStopped(driver: HypervisorDriver, vmid: string, check: StillStoppedCheck): Promise<void> {
  let state: GuestRunState;
  try {
    state = await driver.status(vmid);
  } catch (err) {
    throw new ColdvaultError('HYPERVISOR', `checking that guest ${vmid} stayed stopped ${check.during} failed: ${describeError(err)}; ${check.outcome}`, {
      cause: err,
    });
  }
  if (state === 'stopped') return;
  throw new ColdvaultError('GUEST_STARTED', `guest ${vmid} was started ${check.during} (status: ${state}); ${check.outcome}`);
}
