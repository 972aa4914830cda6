/**
 * Drive keys and drive values (`ide0-3`, `sata0-5`, `scsi0-30`, `virtio0-15`, `efidisk0`, `tpmstate0`),
 * after qemu-server's Drive.pm: the volume is the bare first value or `file=` / `volume=`.
 */
import { parseBoolean, splitPropertyString, type PropertyPart } from './property-string.js';

const BUS_LIMITS: ReadonlyArray<readonly [string, number]> = [
  ['ide', 4],
  ['sata', 6],
  ['scsi', 31],
  ['virtio', 16],
];

/** Every valid drive key in the order Proxmox iterates them (valid_drive_names). */
export const DRIVE_KEYS: readonly string[] = [
  ...BUS_LIMITS.flatMap(([bus, count]) => Array.from({ length: count }, (_, i) => `${bus}${i}`)),
  'efidisk0',
  'tpmstate0',
];

const DRIVE_KEY_SET = new Set(DRIVE_KEYS);

export function isDriveKey(key: string): boolean {
  return DRIVE_KEY_SET.has(key);
}

export interface Drive {
  readonly volume: string;
  readonly parts: readonly PropertyPart[];
  /** Index in `parts` of the part holding the volume. */
  readonly volumeIndex: number;
}

const VOLUME_KEYS = new Set(['file', 'volume']);

/** Parses a drive value; returns an error text when Proxmox's parse_drive would refuse it. */
export function parseDrive(value: string): Drive | string {
  const parts = splitPropertyString(value);
  if (typeof parts === 'string') return parts;
  const volumeParts = parts.flatMap((p, i) => (p.key === null || VOLUME_KEYS.has(p.key) ? [i] : []));
  if (volumeParts.length === 0) return 'no volume';
  if (volumeParts.length > 1) return 'more than one volume';
  const volumeIndex = volumeParts[0] ?? 0;
  const backup = option(parts, 'backup');
  if (backup !== undefined && parseBoolean(backup) === undefined) return `backup=${backup} is not a boolean`;
  return { volume: parts[volumeIndex]?.value ?? '', parts, volumeIndex };
}

/** The value of the last `key=` part, as Proxmox would see it. */
export function option(parts: readonly PropertyPart[], key: string): string | undefined {
  return parts.filter((p) => p.key === key).at(-1)?.value;
}

export function isCdrom(drive: Drive): boolean {
  return option(drive.parts, 'media') === 'cdrom';
}

/** backup=0 (or off/no/false) given explicitly. */
export function isBackupDisabled(drive: Drive): boolean {
  const backup = option(drive.parts, 'backup');
  return backup !== undefined && parseBoolean(backup) === false;
}

const QEMU_FORMAT_EXT = /\.(raw|cow|qcow|qcow2|qed|vmdk|cloop)$/;

/** `format=` when given, else the volume's file extension, else raw (block storages, devices). */
export function driveFormat(drive: Drive): string {
  return option(drive.parts, 'format') ?? QEMU_FORMAT_EXT.exec(drive.volume)?.[1] ?? 'raw';
}
