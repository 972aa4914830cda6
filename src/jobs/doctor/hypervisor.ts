/**
 * The hypervisor driver answers: the qemu driver's sockets and start command (qemu-sockets.ts); the
 * proxmox and libvirt drivers are asked the status of each guest of the guests dir through the driver
 * itself (`qm status`, `virsh domstate`), a few at a time; `none` has nothing to ask.
 */
import { describeError, type HypervisorConfig, type HypervisorDriver } from '../../core/index.js';
import { createDriver } from '../../guests/hypervisor/index.js';
import { guestIdsOf } from './guests.js';
import { within } from './probe.js';
import { qemuFindings } from './qemu-sockets.js';
import { type DoctorCheck, type DoctorSetup, type Finding, fail, ok, warn } from './types.js';

const CHECK = 'hypervisor';
const ASK_MS = 60_000;
const AT_ONCE = 4;

export const hypervisorCheck: DoctorCheck = {
  name: CHECK,
  async run(setup): Promise<Finding[]> {
    const config = setup.hypervisor;
    let driver: HypervisorDriver;
    try {
      driver = createDriver(config);
    } catch (err) {
      return [fail(CHECK, describeError(err), "set hypervisor.driver to 'proxmox' (a Proxmox VE node), 'qemu', 'libvirt' or 'none'")];
    }
    if (driver.name === 'none') return [ok(CHECK, "driver 'none': every guest counts as stopped; jobs never stop or start one")];
    if (driver.name === 'qemu') return qemuFindings(setup, config);
    return [await askDriver(setup, driver, config)];
  },
};

async function askDriver(setup: DoctorSetup, driver: HypervisorDriver, config: HypervisorConfig | undefined): Promise<Finding> {
  const ids = await guestIdsOf(setup);
  if (ids.length === 0) return warn(CHECK, `${driver.name} driver: no guest config to ask about, so it was not asked`, 'see the guests dir finding');
  const states: string[] = [];
  try {
    for (let i = 0; i < ids.length; i += AT_ONCE) {
      const batch = ids.slice(i, i + AT_ONCE);
      const answers = await Promise.all(batch.map((vmid) => within(driver.status(vmid), ASK_MS, `${driver.name} status of guest ${vmid}`)));
      states.push(...answers.map((state, j) => `${batch[j]} ${state}`));
    }
  } catch (err) {
    return fail(CHECK, `${driver.name} driver: ${describeError(err)}`, driverFix(driver.name, config));
  }
  return ok(CHECK, `${driver.name} driver answers: ${states.join(', ')}`);
}

function driverFix(name: string, config: HypervisorConfig | undefined): string {
  if (name === 'proxmox')
    return "run coldvault on a Proxmox VE node as root ('qm' in /usr/sbin on the PATH), or set hypervisor.driver to the one this host has";
  return `check hypervisor.libvirtUri ('${config?.libvirtUri ?? "virsh's default"}') and libvirtDomain, that libvirtd runs and that 'virsh' is installed (libvirt-clients)`;
}
