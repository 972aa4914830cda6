/**
 * Parsing `lsblk --json --bytes -o NAME,PATH,...` and `blkid -p -o export` into typed block devices.
 * Pure functions; reading the tools is in `readBlockDevices`.
 */
import { ColdvaultError } from '../core/index.js';
import { run } from './exec.js';

export const LSBLK_COLUMNS = 'NAME,PATH,SIZE,FSTYPE,LABEL,UUID,MODEL,SERIAL,MOUNTPOINT,TYPE,RM,HOTPLUG,TRAN,PKNAME';

export interface BlockDevice {
  name: string;
  path: string;
  size: number;
  fstype: string | null;
  label: string | null;
  uuid: string | null;
  model: string | null;
  serial: string | null;
  mountpoint: string | null;
  /** disk, part, loop, rom, lvm, crypt... */
  type: string;
  removable: boolean;
  hotplug: boolean;
  /** usb, sata, nvme...; a partition inherits its disk's. */
  transport: string | null;
  parent: string | null;
  hasChildren: boolean;
}

type Raw = Record<string, unknown> & { children?: Raw[] };

const text = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v.trim() : null);
const bool = (v: unknown): boolean => v === true || v === '1' || v === 1;
const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : 0);

function toDevice(raw: Raw, parent: BlockDevice | undefined): BlockDevice {
  const name = text(raw.name) ?? '';
  return {
    name,
    path: text(raw.path) ?? `/dev/${name}`,
    size: num(raw.size),
    fstype: text(raw.fstype),
    label: text(raw.label),
    uuid: text(raw.uuid),
    model: text(raw.model) ?? parent?.model ?? null,
    serial: text(raw.serial) ?? parent?.serial ?? null,
    mountpoint: text(raw.mountpoint),
    type: text(raw.type) ?? 'unknown',
    removable: bool(raw.rm) || (parent?.removable ?? false),
    hotplug: bool(raw.hotplug) || (parent?.hotplug ?? false),
    transport: text(raw.tran) ?? parent?.transport ?? null,
    parent: text(raw.pkname) ?? parent?.name ?? null,
    hasChildren: Array.isArray(raw.children) && raw.children.length > 0,
  };
}

function flatten(rows: Raw[], parent: BlockDevice | undefined, out: BlockDevice[]): void {
  for (const raw of rows) {
    const device = toDevice(raw, parent);
    out.push(device);
    if (Array.isArray(raw.children)) flatten(raw.children, device, out);
  }
}

/** Parses lsblk's JSON (tree or `--list`) into a flat list, parents before their children. */
export function parseLsblk(json: string): BlockDevice[] {
  let parsed: { blockdevices?: unknown };
  try {
    parsed = JSON.parse(json) as typeof parsed;
  } catch (cause) {
    throw new ColdvaultError('IO', 'parsing the output of lsblk failed: not JSON', { cause });
  }
  if (!Array.isArray(parsed.blockdevices)) throw new ColdvaultError('IO', 'parsing the output of lsblk failed: no "blockdevices"');
  const out: BlockDevice[] = [];
  flatten(parsed.blockdevices as Raw[], undefined, out);
  const byName = new Map(out.map((d) => [d.name, d]));
  for (const d of out) {
    const p = d.parent ? byName.get(d.parent) : undefined;
    if (p) Object.assign(d, { removable: d.removable || p.removable, hotplug: d.hotplug || p.hotplug, transport: d.transport ?? p.transport });
  }
  return out;
}

/** Parses `blkid -p -o export` (KEY=value lines) into its fields. */
export function parseBlkidExport(output: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of output.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1).replace(/\\(.)/g, '$1');
  }
  return fields;
}

/** Fills filesystem type, label and UUID that lsblk could not give (no udev) from a blkid probe. */
async function probeFilesystem(d: BlockDevice): Promise<void> {
  if (d.fstype !== null || d.hasChildren || d.size === 0 || !['disk', 'part', 'loop'].includes(d.type)) return;
  try {
    const f = parseBlkidExport(await run('blkid', ['-p', '-o', 'export', d.path], 10_000));
    if (f.USAGE !== undefined && f.USAGE !== 'filesystem') return;
    d.fstype = f.TYPE ?? null;
    d.label = f.LABEL ?? d.label;
    d.uuid = f.UUID ?? d.uuid;
  } catch {
    // blkid exits 2 when it finds nothing: no filesystem
  }
}

/** All block devices of this machine, mounted or not, with their filesystems. */
export async function readBlockDevices(): Promise<BlockDevice[]> {
  let json: string;
  try {
    json = await run('lsblk', ['--json', '--bytes', '-o', LSBLK_COLUMNS]);
  } catch (cause) {
    throw new ColdvaultError('IO', 'listing block devices with lsblk failed', { cause });
  }
  const devices = parseLsblk(json);
  await Promise.all(devices.map(probeFilesystem));
  return devices;
}
