/**
 * The keys Proxmox VE's qemu-server knows in a guest config (`$confdesc` in QemuServer.pm, with its
 * numbered families and the cloud-init keys, read at qemu-server 006dbac; see interfaces.md §1).
 * parse_vm_config checks every `key: value` of the main, [PENDING] and snapshot sections against it
 * and drops an unknown key with a warning; besides it knows `description`, `snapstate`, `args` and,
 * in [PENDING] only, `delete`. [special:cloudinit] is not checked; [special:fleecing] knows
 * `fleecing-images`. coldvault keeps every line, but says in the backup's log what Proxmox ignores.
 */
import type { SectionKind } from './config-model.js';
import { DRIVE_KEYS } from './drives.js';

const PLAIN = [
  'acpi',
  'affinity',
  'agent',
  'amd-sev',
  'arch',
  'args',
  'audio0',
  'autostart',
  'balloon',
  'bios',
  'boot',
  'bootdisk',
  'cdrom',
  'cicustom',
  'cipassword',
  'citype',
  'ciupgrade',
  'ciuser',
  'cores',
  'cpu',
  'cpulimit',
  'cpuunits',
  'description',
  'freeze',
  'hookscript',
  'hotplug',
  'hugepages',
  'ivshmem',
  'keephugepages',
  'keyboard',
  'kvm',
  'localtime',
  'lock',
  'machine',
  'memory',
  'meta',
  'migrate_downtime',
  'migrate_speed',
  'name',
  'nameserver',
  'numa',
  'onboot',
  'ostype',
  'parent',
  'protection',
  'reboot',
  'rng0',
  'running-nets-host-mtu',
  'runningcpu',
  'runningmachine',
  'scsihw',
  'searchdomain',
  'shares',
  'smbios1',
  'smp',
  'snapstate',
  'snaptime',
  'sockets',
  'spice_enhancements',
  'sshkeys',
  'startdate',
  'startup',
  'tablet',
  'tags',
  'tdf',
  'template',
  'vcpus',
  'vga',
  'vmgenid',
  'vmstate',
  'vmstatestorage',
  'watchdog',
];

/** `net` 0..31 means net0 .. net31. */
const NUMBERED: ReadonlyArray<readonly [string, number]> = [
  ['net', 32],
  ['ipconfig', 32],
  ['numa', 8],
  ['virtiofs', 10],
  ['parallel', 3],
  ['serial', 4],
  ['hostpci', 16],
  ['usb', 14],
  ['unused', 256],
];

const numbered = NUMBERED.flatMap(([prefix, count]) => Array.from({ length: count }, (_, i) => `${prefix}${i}`));

const CONFIG_KEYS: ReadonlySet<string> = new Set([...PLAIN, ...numbered, ...DRIVE_KEYS]);
const FLEECING_KEYS: ReadonlySet<string> = new Set(['fleecing-images']);

/** Whether Proxmox knows `key` in a section of this kind (`name`: the special section's name). */
export function isKnownKey(key: string, kind: SectionKind, name: string): boolean {
  if (kind === 'special') return name === 'cloudinit' || FLEECING_KEYS.has(key);
  if (key === 'delete') return kind === 'pending';
  return CONFIG_KEYS.has(key);
}
