/**
 * The power-cut suite both filesystems run (ext4.test.ts, xfs.test.ts: two files, so that vitest runs
 * them side by side): a seeded campaign of cuts across backup, prune, gc, restore and catalog rebuild
 * on a small filesystem on a loop device (test/helpers/power-cut/). Needs root, xfs_io and a C compiler (cut-shim.c).
 *
 * CV_POWERCUT_SEED chooses the seed (printed; the same seed replays the same sequence),
 * CV_POWERCUT_CUTS the number of cuts per filesystem (default 26: 52 per CI run).
 */
import { afterAll, expect, it } from 'vitest';
import { cleanupPowerCut, OPERATIONS, runCampaign, summarize, type FsType } from '../helpers/power-cut/index.js';

export const SEED = Number(process.env.CV_POWERCUT_SEED ?? Date.now() % 2_147_483_647) >>> 0 || 1;
const CUTS = Number(process.env.CV_POWERCUT_CUTS ?? 26);

export function powerCutSuite(fs: FsType): void {
  afterAll(() => cleanupPowerCut());

  // The user relies on a power cut at any moment of any operation never losing or damaging a version
  // that was backed up, never leaving a chunk that a later backup would trust but that is empty or
  // short, never leaving a half-restored guest, and never blocking the next backup.
  it(`${CUTS} power cuts of backup, prune, gc, restore and catalog rebuild on ${fs}: every version whole, every chunk right, restores all or nothing`, async () => {
    console.log(`power-cut ${fs}: CV_POWERCUT_SEED=${SEED}`);
    const report = await runCampaign({ fs, cuts: CUTS, seed: SEED, maxFailures: 1 });
    console.log(summarize([report]));
    const failed = report.results.filter((r) => r.problems.length > 0);
    expect(failed.map((r) => `seed ${SEED} round ${r.round} (${r.op}): ${r.problems.join('\n')}`)).toEqual([]);
    expect(report.final).toEqual([]);
    expect(report.results).toHaveLength(CUTS);
    for (const op of OPERATIONS) expect(report.results.filter((r) => r.op === op).length, op).toBeGreaterThanOrEqual(Math.floor(CUTS / OPERATIONS.length));
    // cuts fell inside the operations, not only after them (a harness that never cut mid-run would prove nothing)
    expect(report.results.filter((r) => !r.afterExit).length).toBeGreaterThan(CUTS / 4);
  }, 900_000);
}
