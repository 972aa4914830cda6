/**
 * Power cuts for coldvault's tests and its release campaign (bench/power-cut-campaign.mjs): a small
 * ext4 or XFS filesystem on a loop device is shut down without flushing its log under a running
 * coldvault operation, mounted again, and the datastore and restore targets checked.
 * rig.ts: the filesystem and the cut; lab.ts: the guests, the store and what it may hold;
 * inspect.ts: the checks on the files; operations.ts: the five operations and their checks;
 * campaign.ts: seeded rounds of cuts and the report.
 */
export * from './rig.js';
export * from './inspect.js';
export * from './lab.js';
export * from './operations.js';
export * from './campaign.js';
export * from './page-cache-cli.js';

import { removeAllPageCacheClis } from './page-cache-cli.js';
import { destroyAllRigs } from './rig.js';

/** After an interrupted run (a signal, a failed test): our loop devices detached, our CLI copies removed. */
export function cleanupPowerCut(): void {
  destroyAllRigs();
  removeAllPageCacheClis();
}
