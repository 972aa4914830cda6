/**
 * Which versions of one guest a sync pulls, decided under the guest's lock here from the source's
 * version list and what the target holds. A version keeps its number (a sync copies versions as they
 * are). For each source version, oldest first:
 *   present   the same number is here with the same manifest time: already synced
 *   conflict  the same number is here with another time (a backup here took it): skipped, WARN;
 *             nothing here is ever overwritten
 *   older     not here, but its number is at most the highest one handed out here (numbers are never
 *             reused: it was pruned here, or a version here had it): skipped, never pulled back
 *   keep      older than the newest `keep` versions of the source: the rotation would remove it at once
 *   pull      everything else, oldest first
 */
import type { SourceVersion } from './pull-source.js';
import type { TargetVersions } from './sink.js';

export type SkipReason = 'conflict' | 'older' | 'keep' | 'after-failure';

export interface GuestPlan {
  present: number[];
  skipped: Array<{ version: number; reason: SkipReason }>;
  pull: SourceVersion[];
  /** the highest version number handed out here before the sync */
  highest: number;
}

/** `sourceTime`: a source version's manifest time, asked only for the numbers that are here too. */
export async function planGuest(
  target: TargetVersions,
  rows: readonly SourceVersion[],
  sourceTime: (row: SourceVersion) => Promise<string>,
  keep?: number,
): Promise<GuestPlan> {
  const here = new Set(target.numbers);
  const sorted = [...rows].sort((a, b) => a.version - b.version);
  const newest = new Set(keep ? sorted.slice(-keep).map((r) => r.version) : sorted.map((r) => r.version));
  const plan: GuestPlan = { present: [], skipped: [], pull: [], highest: target.highest };
  for (const row of sorted) {
    if (here.has(row.version)) {
      const same = sameTime(await target.manifestTime(row.version), await sourceTime(row));
      if (same) plan.present.push(row.version);
      else plan.skipped.push({ version: row.version, reason: 'conflict' });
    } else if (row.version <= target.highest) plan.skipped.push({ version: row.version, reason: 'older' });
    else if (!newest.has(row.version)) plan.skipped.push({ version: row.version, reason: 'keep' });
    else plan.pull.push(row);
  }
  return plan;
}

function sameTime(a: string, b: string): boolean {
  return a === b || Date.parse(a) === Date.parse(b);
}
