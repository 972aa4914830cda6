/**
 * Free space where coldvault writes: the state dir and every folder datastore that is there. Below
 * FAIL_BYTES the next backup (or the state database) is about to fail; below WARN_SHARE of the
 * filesystem it is time to prune, collect garbage or add a disk. Folders on one filesystem are named
 * together, once.
 */
import { stat, statfs } from 'node:fs/promises';
import { describeError, formatBytes } from '../../core/index.js';
import { folderStores } from './folder-stores.js';
import { pathKind } from './probe.js';
import { type DoctorCheck, type Finding, fail, ok, warn } from './types.js';

/** less than this free: fail (a 4 MiB chunk store, a SQLite journal and a task log need room to grow) */
export const FAIL_BYTES = 1024 ** 3;
/** less than this share of the filesystem free: warn */
export const WARN_SHARE = 0.1;

const CHECK = 'free space';

interface Place {
  label: string;
  dir: string;
}

export const freeSpaceCheck: DoctorCheck = {
  name: CHECK,
  async run(setup): Promise<Finding[]> {
    const places = await existing([{ label: 'state dir', dir: setup.stateDir }, ...folderStores(setup)]);
    const byFs = new Map<string, { places: Place[]; free: number; total: number }>();
    const findings: Finding[] = [];
    for (const place of places) {
      try {
        const [s, { dev }] = await Promise.all([statfs(place.dir), stat(place.dir)]);
        const fs = byFs.get(String(dev)) ?? { places: [], free: s.bavail * s.bsize, total: s.blocks * s.bsize };
        fs.places.push(place);
        byFs.set(String(dev), fs);
      } catch (err) {
        findings.push(
          fail(`free space ${place.label}`, `reading the free space of '${place.dir}' failed: ${describeError(err)}`, `check the filesystem of '${place.dir}'`),
        );
      }
    }
    return [...findings, ...[...byFs.values()].map((fs) => judge(fs.places, fs.free, fs.total))];
  },
};

async function existing(places: Place[]): Promise<Place[]> {
  const kinds = await Promise.all(places.map((p) => pathKind(p.dir).catch(() => 'missing' as const)));
  return places.filter((_, i) => kinds[i] === 'folder').map(({ label, dir }) => ({ label, dir }));
}

function judge(places: Place[], free: number, total: number): Finding {
  const share = total > 0 ? free / total : 0;
  const where = places.map((p) => `${p.label} ('${p.dir}')`).join(', ');
  const found = `${where}: ${formatBytes(free)} free of ${formatBytes(total)} (${(share * 100).toFixed(1)} %)`;
  const fix = `free space there: 'coldvault prune' old versions and 'coldvault gc', remove other files, or move the datastore to a bigger disk`;
  if (free < FAIL_BYTES) return fail(CHECK, found, fix);
  if (share < WARN_SHARE) return warn(CHECK, found, fix);
  return ok(CHECK, found);
}
