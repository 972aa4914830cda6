/**
 * Hypervisor drivers behind the core port (core/hypervisor.ts): `qemu` (QMP socket + a start
 * command), `proxmox` (`qm`), `libvirt` (`virsh`), and `none` (no hypervisor: guests count as stopped).
 * `checkStillStopped` is the check, for any driver, that a guest read while off stayed off.
 * Every driver presses the power button again while it waits for a shutdown (power-button.ts).
 * `liveRestoreSocket`: only the qemu driver's guests can be restored on the fly (live-socket.ts).
 */
import { ColdvaultError, type HypervisorConfig, type HypervisorDriver } from '../../core/index.js';
import { LibvirtDriver } from './libvirt.js';
import { NoneDriver } from './none.js';
import { buttonRepeatMs } from './power-button.js';
import { ProxmoxDriver } from './proxmox.js';
import { QemuDriver } from './qemu.js';

export { LibvirtDriver, NoneDriver, ProxmoxDriver, QemuDriver };
export { checkStillStopped, type StillStoppedCheck } from './still-stopped.js';
export { isQmpGone, QmpClient, type QmpEvent } from './qmp.js';
export { liveRestoreSocket, type LiveRestoreWording } from './live-socket.js';

export function createDriver(config: HypervisorConfig | undefined): HypervisorDriver {
  const repeat = buttonRepeatMs(config?.buttonRepeatSeconds);
  switch (config?.driver ?? 'qemu') {
    case 'qemu':
      return new QemuDriver({ qmpSocket: config?.qmpSocket, startCommand: config?.startCommand, buttonRepeatMs: repeat });
    case 'proxmox':
      return new ProxmoxDriver({ buttonRepeatMs: repeat });
    case 'libvirt':
      return new LibvirtDriver({ uri: config?.libvirtUri, domain: config?.libvirtDomain, buttonRepeatMs: repeat });
    case 'none':
      return new NoneDriver();
    default:
      throw new ColdvaultError('CONFIG_INVALID', `hypervisor.driver '${String(config?.driver)}' is not one of qemu, proxmox, libvirt, none`);
  }
}
