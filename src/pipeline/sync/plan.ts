/**
 * Which versions of one guest a sync pulls, decided under the guest's lock from the remote's version
 * list and what the local store holds. A version keeps its number (a sync copies versions as they
 * are). For each remote version, oldest first:
 *   present   the same number is here with the same manifest time: already synced
 *   conflict  the same number is here with another time (a local backup took it): skipped, WARN;
 *             nothing here is ever overwritten
 *   older     not here, but its number is at most the highest one handed out here (numbers are never
 *             reused: it was pruned here, or a local version had it): skipped, never pulled back
 *   keep      older than the newest `keep` versions on the remote: the rotation would remove it at once
 *   pull      everything else, oldest first
 */
import type { Datastore } from '../../datastore/index.js';

export type SkipReason = 'conflict' | 'older' | 'keep' | 'after-failure';

export interface RemoteRow {
  version: number;
  time: string;
}

export interface GuestPlan {
  present: number[];
  skipped: Array<{ version: number; reason: SkipReason }>;
  pull: RemoteRow[];
  /** the highest version number handed out here before the sync */
  highest: number;
}

export async function planGuest(store: Datastore, guestId: string, remote: readonly RemoteRow[], keep?: number): Promise<GuestPlan> {
  const local = new Set(await store.listVersionNumbers(guestId));
  const highest = (await store.nextVersionNumber(guestId)) - 1;
  const sorted = [...remote].sort((a, b) => a.version - b.version);
  const newest = new Set(keep ? sorted.slice(-keep).map((r) => r.version) : sorted.map((r) => r.version));
  const plan: GuestPlan = { present: [], skipped: [], pull: [], highest };
  for (const row of sorted) {
    if (local.has(row.version)) {
      const same = sameTime((await store.readManifest(guestId, row.version)).time, row.time);
      if (same) plan.present.push(row.version);
      else plan.skipped.push({ version: row.version, reason: 'conflict' });
    } else if (row.version <= highest) plan.skipped.push({ version: row.version, reason: 'older' });
    else if (!newest.has(row.version)) plan.skipped.push({ version: row.version, reason: 'keep' });
    else plan.pull.push(row);
  }
  return plan;
}

function sameTime(a: string, b: string): boolean {
  return a === b || Date.parse(a) === Date.parse(b);
}
