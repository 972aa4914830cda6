/**
 * `coldvault job run` of a guest that was restarted just before the job presses its ACPI button (the
 * report behind issue 11 item 6: a job started right after another had restarted the guest waited
 * for its whole stop timeout). The tiny real guest under QEMU (TCG); the job's pre-stop hook is a
 * barrier: while it waits, the test restarts the guest (as the job before did), then lets the hook
 * return, so coldvault presses the button right after QEMU started, before the guest's kernel booted,
 * and that press is lost. The job presses again; the task log says so; the guest powers itself off,
 * is backed up and started again, well within the stop timeout.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { guestFiles, killGuest, readBootCount } from '../helpers/tiny-guest.js';
import {
  addTinyGuest,
  bootGuest,
  cv,
  diskPath,
  ext4Features,
  lineIndex,
  makeJobLab,
  READY,
  taskIdOf,
  versions,
  waitBooted,
  waitFor,
  writeHook,
  type JobLab,
} from './helpers-jobs.js';

/** generous (QEMU under TCG on 2 shared cores), and what the job waits for on the code before the re-press */
const STOP_TIMEOUT_S = 120;

let lab: JobLab;

beforeAll(async () => {
  lab = await makeJobLab('cv-jbr-', { qemu: true });
});

afterEach(async () => {
  for (const vmid of lab.vmids) await killGuest(lab.qemuDir, vmid);
});

afterAll(async () => {
  await lab?.cleanup();
});

/** A hook whose pre-stop waits (up to 10 min) for the file `go`, after creating `at-pre-stop`. */
function barrierHook(): { script: string; atPreStop: string; go: string } {
  const atPreStop = join(lab.root, 'at-pre-stop');
  const go = join(lab.root, 'go');
  const wait = `if [ "$1" = pre-stop ]; then : > '${atPreStop}'; i=0; while [ ! -e '${go}' ] && [ $i -lt 6000 ]; do /bin/sleep 0.1; i=$((i + 1)); done; fi\n`;
  return { script: writeHook(lab, 'hook-barrier.sh', wait).script, atPreStop, go };
}

describe('job run right after the guest was restarted', () => {
  it('presses the ACPI button again while the guest boots; the log shows it; backed up and started again', async () => {
    const disk = await addTinyGuest(lab, '131', 'booting131');
    await bootGuest(lab, '131');
    const hook = barrierHook();
    const add = await cv(lab, ['job', 'add', 'jr', '--store', lab.storeDir, '--vmid', '131', '--hook', hook.script, '--stop-timeout', String(STOP_TIMEOUT_S)]);
    expect(add.code, add.stderr).toBe(0);

    const running = cv(lab, ['job', 'run', 'jr']);
    try {
      expect(await waitFor(() => existsSync(hook.atPreStop), 120_000)).toBe(true);
      // the job before: shut the guest down and started it again; it is booting now
      await lab.driver!.shutdown('131', 60_000);
      await lab.driver!.start('131');
      const serial = await readFile(guestFiles(lab.qemuDir, '131').log, 'utf8').catch(() => '');
      expect(serial).not.toContain(READY); // nobody listens to the button yet
    } finally {
      writeFileSync(hook.go, '');
    }
    const run = await running;
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);

    const logged = await cv(lab, ['task', 'log', taskIdOf(run.stdout)]);
    expect(logged.code).toBe(0);
    for (const out of [run.stdout, logged.stdout]) {
      const pressed = lineIndex(out, 'guest 131 did not react to the ACPI button yet; pressing it again (2nd press after ');
      expect(pressed, out).toBeGreaterThan(lineIndex(out, 'stopping virtual guest'));
      expect(lineIndex(out, 'restarting vm')).toBeGreaterThan(pressed);
      expect(out).toContain('Backup job finished successfully');
      expect(out).not.toMatch(/did not power off|stopping it hard|ERROR:/);
    }

    // booted by the test (1), restarted before the job (2), started again by the job (3)
    await waitBooted(lab, '131', 3);
    expect(await lab.driver!.status('131')).toBe('running');
    expect(await readBootCount(disk)).toBe(3);
    // the version holds the disk as the guest left it when it powered itself off: boot 2, cleanly unmounted
    expect((await versions(lab, '131')).map((v) => v.version)).toEqual([1]);
    const restore = await cv(lab, ['restore', '131', '--version', '1', '--new-id', '931', '--store', lab.storeDir]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(await readBootCount(diskPath(lab, '931'))).toBe(2);
    expect(await ext4Features(diskPath(lab, '931'))).not.toContain('needs_recovery');
  }, 360_000);
});
