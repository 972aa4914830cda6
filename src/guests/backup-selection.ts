/**
 * What vzdump backs up of a guest: the disks (QemuConfig.pm get_backup_volumes) and the archived
 * config (VZDump/QemuServer.pm: the main section only, without `lock:`, `parent:`, `unusedN:`).
 */
import type { GuestConfig } from './config-model.js';
import { mainSection } from './config-parse.js';
import { DRIVE_KEYS, driveFormat, isBackupDisabled, isCdrom, parseDrive, type Drive } from './drives.js';
import { parseVolume } from './volumes.js';

export interface BackupDisk {
  /** The drive key: scsi0, virtio1, efidisk0... */
  key: string;
  /** The volume as written: `local:101/vm-101-disk-0.qcow2`, `local-lvm:vm-101-disk-0`, `/dev/sdb`. */
  volume: string;
  storage: string | null;
  volname: string;
  /** raw|qcow2|vmdk...: `format=`, else the file extension, else raw. */
  format: string;
}

export interface ExcludedDisk {
  key: string;
  volume: string;
  /** Proxmox's words: 'backup=no' or 'efidisk but no OMVF BIOS' (sic, as vzdump logs it). */
  reason: string;
}

/**
 * The disks vzdump would back up, in Proxmox's iteration order: ide0-3, sata0-5, scsi0-30, virtio0-15,
 * efidisk0, tpmstate0. CD-ROMs (`media=cdrom`) and the volumes `none` (empty drive) and `cdrom` (the
 * host's CD drive) are in neither list.
 */
const NO_DISK = new Set(['none', 'cdrom']);

export function selectBackupDisks(config: GuestConfig): { included: BackupDisk[]; excluded: ExcludedDisk[] } {
  const values = mainSection(config).values;
  const ovmf = values.get('bios') === 'ovmf';
  const included: BackupDisk[] = [];
  const excluded: ExcludedDisk[] = [];
  for (const key of DRIVE_KEYS) {
    const value = values.get(key);
    const drive = value === undefined ? undefined : parseDrive(value);
    if (drive === undefined || typeof drive === 'string' || isCdrom(drive) || NO_DISK.has(drive.volume)) continue;
    const reason = exclusionReason(key, drive, ovmf);
    if (reason) excluded.push({ key, volume: drive.volume, reason });
    else included.push({ key, volume: drive.volume, ...parseVolume(drive.volume), format: driveFormat(drive) });
  }
  return { included, excluded };
}

function exclusionReason(key: string, drive: Drive, ovmf: boolean): string | undefined {
  if (key === 'efidisk0' && !ovmf) return 'efidisk but no OMVF BIOS';
  return isBackupDisabled(drive) ? 'backup=no' : undefined;
}

const NOT_ARCHIVED = /^(lock:|parent:|unused\d+:|#qmdump#|#vzdump#)/;

/**
 * The config as vzdump archives it (`qemu-server.conf`): the main section's lines as written, minus
 * `lock:`, `parent:`, `unusedN:` and stray `#qmdump#`/`#vzdump#` lines, without trailing blank lines,
 * ending in '\n' (empty string for an empty section). The caller appends the `#qmdump#map:` lines.
 */
export function archivedConfigText(config: GuestConfig): string {
  const lines = mainSection(config)
    .lines.map((l) => l.text)
    .filter((t) => !NOT_ARCHIVED.test(t));
  while (lines.length > 0 && /^\s*$/.test(lines[lines.length - 1] ?? '')) lines.pop();
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
