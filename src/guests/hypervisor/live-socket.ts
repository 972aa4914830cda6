/**
 * Which driver can run a restore-on-the-fly (`restore --live`, the API's `live: true`): coldvault
 * starts the restored guest itself with QEMU on overlays over an NBD export, so only the qemu
 * driver's guests (its QMP socket is where the guest is then found). The one table of why the other
 * drivers cannot, shared by the CLI and the API.
 */
import { ColdvaultError, type HypervisorDriver } from '../../core/index.js';
import { QemuDriver } from './qemu.js';

const WHY_NOT: Record<string, string> = {
  proxmox: "Proxmox's qm cannot start a guest on an external NBD disk",
  libvirt: 'coldvault does not drive virsh blockcopy yet (no libvirtd to test it against here)',
  none: 'no hypervisor is configured to run the guest',
};

/** How the caller names the live restore and the plain one, in the refusal (`restore --live` / `restore without --live`). */
export interface LiveRestoreWording {
  asked: string;
  instead: string;
}

/** The restored guest's QMP socket under the qemu driver; NOT_SUPPORTED naming the driver and why for any other. */
export function liveRestoreSocket(driver: HypervisorDriver, newId: string, wording: LiveRestoreWording): string {
  if (driver instanceof QemuDriver) return driver.socketPath(newId);
  const why = WHY_NOT[driver.name] ?? `the ${driver.name} driver cannot`;
  throw new ColdvaultError(
    'NOT_SUPPORTED',
    `${wording.asked} needs the qemu driver (hypervisor.driver 'qemu'), not '${driver.name}': ${why}; ${wording.instead}`,
  );
}
