/**
 * guests: the inventory side of a guest, in Proxmox's own formats. Imports core only.
 *
 * Vocabulary:
 * - guest config: `/etc/pve/qemu-server/<vmid>.conf`. A main section of `key: value` lines and `#`
 *   description lines, then optional `[PENDING]`, `[special:cloudinit|fleecing]` and `[snapshot]`
 *   sections. `GuestConfig` keeps every line (print(parse(x)) === x) and, per section, the effective
 *   key/values as Proxmox's parse_vm_config reads them (unknown sections and earlier duplicates skipped).
 * - drive: `ide0-3 sata0-5 scsi0-30 virtio0-15 efidisk0 tpmstate0`, value `<volume>[,option=...]`.
 * - volume: `storage:volname` (`local:101/vm-101-disk-0.qcow2`, `local-lvm:vm-101-disk-0`) or an
 *   absolute path; resolved against "dir" storages (id -> directory).
 * - path rule (disk-paths.ts): a disk is read only when its real path lies in a storage or matches
 *   the config's allowDiskPaths (block devices); never /proc, /sys, character devices, FIFOs, sockets
 *   or folders. A restore writes only inside the real folder of its target storage.
 *
 * Algorithms, each after the Proxmox code it mirrors:
 * - backup selection (get_backup_volumes): every drive except CD-ROMs and `none`; backup=0 and an
 *   efidisk without `bios: ovmf` are excluded with a reason; Proxmox's iteration order.
 * - archived config (vzdump): the main section without lock/parent/unusedN lines.
 * - restore (qmrestore): new volume names `vm-<newId>-disk-<lowest free N>` in sorted key order, and
 *   a line rewrite that touches only drives, vmgenid and (with --unique) MACs and the smbios1 uuid.
 */
export type {
  BlankLine,
  ConfigLine,
  ConfigSection,
  DescriptionLine,
  GuestConfig,
  HeaderLine,
  IgnoredLine,
  PropertyLine,
  SectionKind,
} from './config-model.js';
export { parseGuestConfig, printGuestConfig, configValue, guestName } from './config-parse.js';
export { archivedConfigText, selectBackupDisks, type BackupDisk, type ExcludedDisk } from './backup-selection.js';
export { parseVolume, resolveVolumePath, type StorageMap } from './volumes.js';
export { checkRestoreTargets, resolveBackupDisk, type DiskPathRule } from './disk-paths.js';
export { checkDiskPathPattern } from './disk-path-globs.js';
export { guestConfigPath, readGuestConfig, listGuestIds } from './guest-files.js';
export { allocateRestoreVolumes } from './restore-allocate.js';
export { rewriteConfigForRestore } from './restore-rewrite.js';
export { macAddressesOf } from './nets.js';
export { qemuCommand, splitArgs, type QemuCommandRequest, type QemuDrive } from './qemu-command.js';
