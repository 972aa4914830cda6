/**
 * Discovery: the attached, unmounted filesystems a datastore could live on, and whose datastore
 * each holds (mounted read-only in a temp dir for a moment, always unmounted again).
 */
import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeError } from '../core/errors.js';
import { mountDevice, readDatastoreId, unmountDevice } from './device-mount.js';
import { readBlockDevices, type BlockDevice } from './lsblk.js';

/** A candidate block device as lsblk describes it, and the datastore found on it. */
export interface DiscoveredDevice extends Pick<BlockDevice, 'path' | 'size' | 'fstype' | 'label' | 'uuid' | 'model' | 'serial' | 'type' | 'transport'> {
  /** The coldvault datastore on it, or null. */
  datastore: { id: string } | null;
  /** Why the datastore could not be looked for (mount failed...), when it could not. */
  probeError?: string;
}

export interface ListDevicesOptions {
  /** Also loop devices and fixed disks (not only removable / hotplug / USB ones). */
  all?: boolean;
  /** Skip mounting to look for a datastore (datastore is then null). */
  noProbe?: boolean;
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

/** Mounts read-only in a fresh temp dir, reads the identity, always unmounts and removes the dir. */
export async function probeDatastore(device: BlockDevice): Promise<{ id: string } | null> {
  const dir = await mkdtemp(join(tmpdir(), 'coldvault-probe-'));
  try {
    await mountDevice(device, dir, { readOnly: true, noRecovery: true });
    try {
      const id = await readDatastoreId(dir);
      return id === null ? null : { id };
    } finally {
      await unmountDevice(dir);
    }
  } finally {
    await rmdir(dir).catch(() => undefined);
  }
}

async function describe(d: BlockDevice, probe: boolean): Promise<DiscoveredDevice> {
  const out: DiscoveredDevice = {
    path: d.path, size: d.size, fstype: d.fstype, label: d.label, uuid: d.uuid,
    model: d.model, serial: d.serial, type: d.type, transport: d.transport, datastore: null,
  };
  if (!probe) return out;
  try {
    out.datastore = await probeDatastore(d);
  } catch (err) {
    out.probeError = describeError(err);
  }
  return out;
}

/** The devices a datastore could live on; each probed one at a time (mounts are not raced). */
export async function listDevices(opts: ListDevicesOptions = {}): Promise<DiscoveredDevice[]> {
  const candidates = selectCandidates(await readBlockDevices(), opts.all ?? false);
  const out: DiscoveredDevice[] = [];
  for (const d of candidates) out.push(await describe(d, !opts.noProbe));
  return out;
}
