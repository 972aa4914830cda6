/**
 * The hypervisor port: what the job runner needs from whatever runs the guests (QEMU over QMP,
 * Proxmox `qm`, libvirt `virsh`). Drivers live in guests/hypervisor/; the runner only sees this.
 * Contracts:
 * - `status` never changes anything.
 * - `shutdown` asks the guest to power off (ACPI) and resolves once it is off; after `timeoutMs` it
 *   rejects with STOP_TIMEOUT and leaves the guest running (the caller decides about `stop`). While
 *   it waits, it presses the button again every few seconds (a guest still booting misses a press),
 *   saying so in `opts.log` (the config's `buttonRepeatSeconds`, see guests/hypervisor/power-button.ts).
 * - `stop` is a hard stop (power cut); `start` resolves once the hypervisor reports the guest running.
 * All are idempotent where that makes sense: shutdown/stop of a stopped guest and start of a running
 * one resolve at once.
 * - `lockBackup`/`unlockBackup`, for hypervisors that keep a lock in the guest's config (Proxmox
 *   `lock: backup`, as vzdump sets it): `lockBackup` sets the lock, refusing with GUEST_LOCKED (naming
 *   the lock found) a guest that holds any lock already, atomically with that check. While this driver
 *   holds it, its own shutdown/stop/start pass over it (Proxmox `--skiplock`); nobody else's start does.
 *   `unlockBackup` clears a `backup` lock (also one left by a run that died), resolves at once when
 *   there is none, and leaves any other lock in place with GUEST_LOCKED naming it.
 */
import type { TaskLog } from './log.js';

export type GuestRunState = 'running' | 'stopped' | 'paused' | 'unknown';

export interface ShutdownOptions {
  /** the job's log: each repeated press of the power button is an info line here */
  log?: TaskLog;
}

export interface HypervisorDriver {
  readonly name: string;
  status(vmid: string): Promise<GuestRunState>;
  shutdown(vmid: string, timeoutMs: number, opts?: ShutdownOptions): Promise<void>;
  stop(vmid: string): Promise<void>;
  start(vmid: string, timeoutMs?: number): Promise<void>;
  /** disk image paths of a guest, where the hypervisor knows them (libvirt domblklist) */
  diskPaths?(vmid: string): Promise<string[]>;
  /** sets the hypervisor's backup lock on the guest's config (see the header) */
  lockBackup?(vmid: string): Promise<void>;
  /** clears the backup lock (see the header) */
  unlockBackup?(vmid: string): Promise<void>;
}

export interface HypervisorConfig {
  driver: 'qemu' | 'proxmox' | 'libvirt' | 'none';
  /** qemu: the QMP socket, `{vmid}` replaced; default /var/run/qemu-server/{vmid}.qmp */
  qmpSocket?: string;
  /** qemu: the command that starts a guest, `{vmid}` replaced, run by /bin/sh */
  startCommand?: string;
  /** qemu: QEMU's accelerators for the guests coldvault starts itself (`restore --live`): 'kvm:tcg' (default) or 'tcg' */
  accel?: string;
  /** libvirt: connection URI, e.g. qemu:///system or test:///default */
  libvirtUri?: string;
  /** libvirt: domain name template, `{vmid}` replaced; default the vmid itself */
  libvirtDomain?: string;
  /** every driver: while waiting for a shutdown, press the power button again every this many seconds; default 5, 0 = press once */
  buttonRepeatSeconds?: number;
}
