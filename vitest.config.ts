import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Two lanes on CI's 2 cores. Test files are independent (each makes its own folders, loop devices by
 * `losetup --find`, network namespaces named after its pid), so they run two at a time - except the
 * files that list or identify the machine's block devices (device discovery, mounting a disk by its
 * identity, the devices API): they would see the other lane's loop devices, so they run one at a time
 * after the rest (group 1), when nothing else has a loop device attached. (Projects of one group share
 * one worker count, so no other project can run beside them in a second lane.)
 */
const sharesDevices = [
  'test/jobs/job-device*.test.ts',
  'test/jobs/sync-job.test.ts',
  'test/server/devices.test.ts',
  'test/e2e/overview-rotation.test.ts',
  'test/server/store-devices.test.ts',
  'test/server/roles.test.ts',
  'test/targets/devices.test.ts',
  'test/targets/mounts.test.ts',
];

const common = { testTimeout: 120_000, hookTimeout: 120_000 };

/**
 * Longest files first (test/durations.json, written by scripts/test-durations.mjs from a full run), so
 * both lanes end together: a clean checkout has no results cache, and vitest would order by file size,
 * which left the two longest power-cut files for the end. Files not in the table go first (new ones
 * are often long); groups keep their order.
 */
const durations = JSON.parse(readFileSync(new URL('./test/durations.json', import.meta.url), 'utf8')) as Record<string, number>;

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const ms = (f: TestSpecification): number => durations[relative(this.ctx.config.root, f.moduleId)] ?? Number.MAX_SAFE_INTEGER;
    const group = (f: TestSpecification): number => f.project.config.sequence.groupOrder;
    return [...files].sort((a, b) => group(a) - group(b) || ms(b) - ms(a));
  }
}

export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
    projects: [
      { test: { ...common, name: 'independent', include: ['test/**/*.test.ts'], exclude: sharesDevices, sequence: { groupOrder: 0 } } },
      { test: { ...common, name: 'devices', include: sharesDevices, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
  },
});
