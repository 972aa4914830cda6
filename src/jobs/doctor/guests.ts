/**
 * The guests side of the config: the guests dir holds guest configs (`<vmid>.conf`), and each storage
 * folder (`storages`) is there, so the volumes of those configs resolve.
 */
import { describeError } from '../../core/index.js';
import { listGuestIds } from '../../guests/index.js';
import { pathKind } from './probe.js';
import { type DoctorCheck, type DoctorSetup, type Finding, fail, ok, warn } from './types.js';

export const guestsCheck: DoctorCheck = {
  name: 'guests',
  run: async (setup) => [
    await guestsDirFinding(setup.guestsDir),
    ...(await Promise.all(Object.entries(setup.storages).map(([id, dir]) => storageFinding(id, dir)))),
  ],
};

async function guestsDirFinding(guestsDir: string): Promise<Finding> {
  const fix = 'set guestsDir in the config (Proxmox: /etc/pve/qemu-server, mounted by the pve-cluster service)';
  if ((await pathKind(guestsDir)) !== 'folder') return fail('guests dir', `the guests dir '${guestsDir}' does not exist or is not a folder`, fix);
  try {
    const ids = await listGuestIds(guestsDir);
    if (ids.length === 0) return warn('guests dir', `'${guestsDir}' holds no guest config (<vmid>.conf): there is nothing to back up`, fix);
    return ok('guests dir', `'${guestsDir}': ${ids.length} guest config(s) (${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ', ...' : ''})`);
  } catch (err) {
    return fail('guests dir', describeError(err), fix);
  }
}

async function storageFinding(id: string, dir: string): Promise<Finding> {
  if ((await pathKind(dir)) === 'folder') return ok(`storage ${id}`, `'${dir}' is there`);
  return warn(
    `storage ${id}`,
    `the folder '${dir}' of storage '${id}' does not exist: disks on '${id}:' can be neither backed up nor restored`,
    `correct storages.${id} in the config (Proxmox: the storage's path in /etc/pve/storage.cfg), or remove it`,
  );
}

/** The guests of the guests dir; none when it cannot be read (the guests check says why). */
export const guestIdsOf = (setup: Pick<DoctorSetup, 'guestsDir'>): Promise<string[]> => listGuestIds(setup.guestsDir).catch(() => []);
