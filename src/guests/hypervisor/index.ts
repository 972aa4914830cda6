/**
 * Hypervisor drivers behind the core port (core/hypervisor.ts): `qemu` (QMP socket + a start
 * command), `proxmox` (`qm`), `libvirt` (`virsh`), and `none` (no hypervisor: guests count as stopped).
 * `checkStillStopped` is the check, for any driver, that a guest read while off stayed off.
 */
import { ColdvaultError, type HypervisorConfig, type HypervisorDriver } from '../../core/index.js';
import { LibvirtDriver } from './libvirt.js';
import { NoneDriver } from './none.js';
import { ProxmoxDriver } from './proxmox.js';
import { QemuDriver } from './qemu.js';

export { LibvirtDriver, NoneDriver, ProxmoxDriver, QemuDriver };
export { checkStillStopped, type StillStoppedCheck } from './still-stopped.js';

export function createDriver(config: HypervisorConfig | undefined): HypervisorDriver {
  switch (config?.driver ?? 'qemu') {
    case 'qemu':
      return new QemuDriver({ qmpSocket: config?.qmpSocket, startCommand: config?.startCommand });
    case 'proxmox':
      return new ProxmoxDriver({});
    case 'libvirt':
      return new LibvirtDriver({ uri: config?.libvirtUri, domain: config?.libvirtDomain });
    case 'none':
      return new NoneDriver();
    default:
      throw new ColdvaultError('CONFIG_INVALID', `hypervisor.driver '${String(config?.driver)}' is not one of qemu, proxmox, libvirt, none`);
  }
}
