/**
 * Discovery: the attached, unmounted filesystems a datastore could live on (listCandidates: from
 * lsblk and blkid alone, nothing mounted), and whose datastore each holds (probeDevices: each
 * mounted read-only, without journal replay, on a read-only block device, in a private temp dir for
 * a moment, always unmounted again).
 */
import { describeError } from '../core/index.js';
import { resolveDevice, withReadOnlyMount } from './device-mount.js';
import { readDatastoreId } from './identity.js';
import { readBlockDevices, type BlockDevice } from './lsblk.js';

/** A candidate block device as lsblk describes it. */
export type CandidateDevice = Pick<BlockDevice, 'path' | 'size' | 'fstype' | 'label' | 'uuid' | 'model' | 'serial' | 'type' | 'transport'>;

/** A candidate device and the datastore found on it. */
export interface DiscoveredDevice extends CandidateDevice {
  /** The coldvault datastore on it, or null. */
  datastore: { id: string } | null;
  /** Why the datastore could not be looked for (mount failed...), when it could not. */
  probeError?: string;
}

export interface ListDevicesOptions {
  /** Also loop devices and fixed disks (not only removable / hotplug / USB ones). */
  all?: boolean;
  /** Only these devices (`/dev/...`, `UUID=...`, `LABEL=...`; loop devices and fixed disks too): DEVICE_NOT_FOUND for one not attached. */
  only?: string[];
}

const isExternal = (d: BlockDevice): boolean => d.removable || d.hotplug || d.transport === 'usb';

/** Pure: which block devices discovery lists (unmounted filesystems, or whole disks with one). */
export function selectCandidates(devices: BlockDevice[], all: boolean): BlockDevice[] {
  return devices.filter((d) => {
    if (d.mountpoint !== null || d.fstype === null || d.size === 0) return false;
    if (d.type === 'loop') return all;
    if (d.type !== 'part' && d.type !== 'disk') return false;
    return all || isExternal(d);
  });
}

/** What a listing says of a device: lsblk's description, without its mount state. */
export const candidate = (d: BlockDevice): CandidateDevice => ({
  path: d.path,
  size: d.size,
  fstype: d.fstype,
  label: d.label,
  uuid: d.uuid,
  model: d.model,
  serial: d.serial,
  type: d.type,
  transport: d.transport,
});

async function candidates(opts: ListDevicesOptions): Promise<BlockDevice[]> {
  const devices = await readBlockDevices();
  if (opts.only === undefined) return selectCandidates(devices, opts.all ?? false);
  const wanted = new Set<string>();
  for (const spec of opts.only) wanted.add((await resolveDevice(spec, devices)).path);
  return selectCandidates(devices, true).filter((d) => wanted.has(d.path));
}

/** The devices a datastore could live on, as lsblk and blkid see them: nothing is mounted. */
export async function listCandidates(opts: ListDevicesOptions = {}): Promise<CandidateDevice[]> {
  return (await candidates(opts)).map(candidate);
}

/** Mounts read-only in a fresh temp dir, reads the identity, always unmounts and removes the dir. */
export async function probeDatastore(device: BlockDevice): Promise<{ id: string } | null> {
  const id = await withReadOnlyMount(device, readDatastoreId);
  return id === null ? null : { id };
}

async function probed(d: BlockDevice): Promise<DiscoveredDevice> {
  const out: DiscoveredDevice = { ...candidate(d), datastore: null };
  try {
    out.datastore = await probeDatastore(d);
  } catch (err) {
    out.probeError = describeError(err);
  }
  return out;
}

/** The candidate devices, each with the datastore on it: each is mounted for a moment, one at a time. */
export async function listDevices(opts: ListDevicesOptions = {}): Promise<DiscoveredDevice[]> {
  const out: DiscoveredDevice[] = [];
  for (const d of await candidates(opts)) out.push(await probed(d));
  return out;
}
