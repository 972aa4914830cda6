/**
 * `coldvault job run` against the tiny real Linux guest under QEMU (TCG), driven through the built
 * CLI: a running guest is shut down over ACPI, backed up while off and started again, with vzdump's
 * hook phases; a stopped guest is backed up without stop/start; a guest that ignores the power
 * button fails alone (left running) unless the job says --force-stop.
 */
import { existsSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killGuest, readBootCount } from '../helpers/tiny-guest.js';
import {
  addTinyGuest,
  bootGuest,
  cv,
  diskPath,
  ext4Features,
  hookCalls,
  lineIndex,
  makeJobLab,
  part,
  startSmtpSink,
  subjectOf,
  taskIdOf,
  versions,
  waitBooted,
  writeHook,
  type JobLab,
} from './helpers-jobs.js';

let lab: JobLab;
let sink: Awaited<ReturnType<typeof startSmtpSink>>;

beforeAll(async () => {
  sink = await startSmtpSink();
  lab = await makeJobLab('cv-jg-', {
    qemu: true,
    ignoreAcpi: ['104'],
    mail: { transport: 'smtp', host: '127.0.0.1', port: sink.port, secure: false, tlsRejectUnauthorized: false, from: 'backup@pve.example.com' },
  });
});

afterEach(async () => {
  for (const vmid of lab.vmids) await killGuest(lab.qemuDir, vmid);
});

afterAll(async () => {
  await lab?.cleanup();
  await sink?.close();
});

describe('job run with a real QEMU guest', () => {
  it('stops a running guest over ACPI, backs it up while off, starts it again; hooks see vzdump phases', async () => {
    const disk = await addTinyGuest(lab, '101', 'web01');
    await bootGuest(lab, '101');
    const bootsBefore = await readBootCount(disk);
    expect(bootsBefore).toBe(1);
    const hook = writeHook(lab, 'hook-a.sh');

    const add = await cv(lab, ['job', 'add', 'j1', '--store', lab.storeDir, '--vmid', '101', '--hook', hook.script, '--keep', '2']);
    expect(add.code, add.stderr).toBe(0);
    const run = await cv(lab, ['job', 'run', 'j1']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);

    const taskId = taskIdOf(run.stdout);
    const logged = await cv(lab, ['task', 'log', taskId]);
    expect(logged.code).toBe(0);
    for (const out of [run.stdout, logged.stdout]) {
      const order = [
        'Starting new backup job',
        'Starting Backup of VM 101',
        'status = running',
        'stopping virtual guest',
        'restarting vm',
        'guest is online again',
        'Finished Backup of VM 101',
        'Backup job finished successfully',
      ].map((t) => [t, lineIndex(out, t)] as const);
      for (const [text, at] of order) expect(at, `'${text}' in the log:\n${out}`).toBeGreaterThanOrEqual(0);
      const positions = order.map(([, at]) => at);
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
      expect(out).not.toMatch(/stopping it hard|ERROR:/);
    }

    // the guest is running again, and it booted once more after the job
    expect(await lab.driver!.status('101')).toBe('running');
    await waitBooted(lab, '101', bootsBefore + 1);
    expect(await readBootCount(disk)).toBe(bootsBefore + 1);

    // hooks: vzdump's phases, in vzdump's order, with vzdump's environment
    const calls = hookCalls(hook.log);
    expect(calls.map((c) => c.args)).toEqual([
      'job-init',
      'job-start',
      'backup-start stop 101',
      'pre-stop stop 101',
      'pre-restart stop 101',
      'post-restart stop 101',
      'backup-end stop 101',
      'log-end stop 101',
      'job-end',
    ]);
    for (const c of calls.filter((c) => c.args.endsWith(' 101'))) {
      expect(c.env.HOSTNAME, c.args).toBe('web01');
      expect(c.env.VMTYPE, c.args).toBe('qemu');
      expect(c.env.DUMPDIR, c.args).toBe(lab.storeDir);
    }
    expect(calls.find((c) => c.args.startsWith('backup-start'))?.env.TARGET).toBe('');
    expect(calls.find((c) => c.args.startsWith('pre-stop'))?.env.TARGET).toBe('');
    const end = calls.find((c) => c.args.startsWith('backup-end'))!;
    expect(end.env.TARGET).not.toBe('');
    expect(end.env.TARGET!.startsWith(lab.storeDir)).toBe(true);
    expect(existsSync(end.env.TARGET!)).toBe(true);
    expect(end.env.LOGFILE).not.toBe('');

    // the backed-up version is the disk as it was while the guest was off: restore it and look inside
    expect((await versions(lab, '101')).map((v) => v.version)).toEqual([1]);
    const restore = await cv(lab, ['restore', '101', '--version', '1', '--new-id', '901', '--store', lab.storeDir, '--json']);
    expect(restore.code, restore.stderr).toBe(0);
    const volumes = (JSON.parse(restore.stdout) as { volumes: Record<string, string> }).volumes;
    expect(Object.values(volumes)).toEqual(['local:901/vm-901-disk-0.raw']);
    const restored = diskPath(lab, '901');
    expect(existsSync(restored), restored).toBe(true);
    expect(await readBootCount(restored)).toBe(bootsBefore);
    // the guest powered itself off (ACPI): its file system was unmounted cleanly, not cut off
    const features = await ext4Features(restored);
    expect(features).toContain('has_journal');
    expect(features).not.toContain('needs_recovery');
  });

  it('backs up a guest that is not running without stopping or starting it', async () => {
    await addTinyGuest(lab, '103', 'idle03');
    const hook = writeHook(lab, 'hook-b.sh');
    expect((await cv(lab, ['job', 'add', 'j2', '--store', lab.storeDir, '--vmid', '103', '--hook', hook.script])).code).toBe(0);
    const run = await cv(lab, ['job', 'run', 'j2']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('status = stopped');
    expect(run.stdout).toContain('Finished Backup of VM 103');
    expect(run.stdout).toContain('Backup job finished successfully');
    expect(run.stdout).not.toContain('stopping virtual guest');
    expect(run.stdout).not.toContain('restarting vm');
    expect(hookCalls(hook.log).map((c) => c.args)).toEqual([
      'job-init',
      'job-start',
      'backup-start stop 103',
      'backup-end stop 103',
      'log-end stop 103',
      'job-end',
    ]);
    expect(await lab.driver!.status('103')).toBe('stopped');
    expect((await versions(lab, '103')).map((v) => v.version)).toEqual([1]);
  });

  it('a guest that ignores ACPI fails alone after --stop-timeout and is left running; the next guest is backed up', async () => {
    await addTinyGuest(lab, '104', 'stubborn04');
    const normalDisk = await addTinyGuest(lab, '105', 'normal05');
    await Promise.all([bootGuest(lab, '104', true), bootGuest(lab, '105')]);
    const hook = writeHook(lab, 'hook-c.sh');
    const add = await cv(lab, [
      'job',
      'add',
      'j3',
      '--store',
      lab.storeDir,
      '--vmid',
      '104,105',
      '--hook',
      hook.script,
      '--stop-timeout',
      '3',
      '--mailto',
      'admin@example.com',
    ]);
    expect(add.code, add.stderr).toBe(0);

    const started = Date.now();
    const run = await cv(lab, ['job', 'run', 'j3']);
    const out = run.stdout;
    expect(run.code, `${out}\n${run.stderr}`).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
    expect(out).toMatch(/ERROR: Backup of VM 104 failed - guest 104 did not power off within 3 s/);
    expect(out).toContain('Backup job finished with errors');
    expect(out).not.toContain('stopping it hard');
    // 104: left running, not restarted, no version
    expect(await lab.driver!.status('104')).toBe('running');
    expect(await versions(lab, '104')).toEqual([]);
    // 105: stopped, backed up, started again
    expect(out).toContain('Finished Backup of VM 105');
    expect((await versions(lab, '105')).map((v) => v.version)).toEqual([1]);
    expect(await lab.driver!.status('105')).toBe('running');
    await waitBooted(lab, '105', 2);
    expect(await readBootCount(normalDisk)).toBe(2);

    const phases = hookCalls(hook.log).map((c) => c.args);
    expect(phases.slice(0, 6)).toEqual(['job-init', 'job-start', 'backup-start stop 104', 'pre-stop stop 104', 'backup-abort stop 104', 'log-end stop 104']);
    expect(phases).not.toContain('backup-end stop 104');
    expect(phases).not.toContain('pre-restart stop 104');
    expect(phases.slice(6, -1)).toEqual([
      'backup-start stop 105',
      'pre-stop stop 105',
      'pre-restart stop 105',
      'post-restart stop 105',
      'backup-end stop 105',
      'log-end stop 105',
    ]);
    // vzdump (PVE::VZDump::exec_backup) runs `job-end` after the last guest even when guests failed;
    // `job-abort` only when the job itself dies. coldvault promises vzdump's phases.
    expect(phases.at(-1)).toBe('job-end');
    // the mail says it too: failed, which guest, and why
    const mail = sink.got.at(-1);
    expect(mail, 'a report mail arrived').toBeDefined();
    expect(subjectOf(mail!.raw)).toMatch(/job j3\): backup failed/);
    const text = part(mail!.raw, 'text/plain');
    expect(text).toMatch(/104\s.*failed/);
    expect(text).toContain('did not power off within 3 s');
  });

  it('with --force-stop the guest that ignores ACPI is stopped hard, backed up and started again', async () => {
    // self-contained: 104 and 105 exist from the test before (their disks may hold a version already)
    if (!lab.vmids.has('104')) await addTinyGuest(lab, '104', 'stubborn04');
    if (!existsSync(`${lab.guestsDir}/105.conf`)) await addTinyGuest(lab, '105', 'normal05');
    const job = await cv(lab, ['job', 'list', '--json']);
    if (!(JSON.parse(job.stdout) as Array<{ id: string }>).some((j) => j.id === 'j3')) {
      expect((await cv(lab, ['job', 'add', 'j3', '--store', lab.storeDir, '--vmid', '104,105', '--stop-timeout', '3'])).code).toBe(0);
    }
    const stubbornDisk = diskPath(lab, '104');
    if ((await lab.driver!.status('104')) !== 'running') await bootGuest(lab, '104', true);
    const boots = await readBootCount(stubbornDisk);
    const before = (await versions(lab, '104')).length;

    const edit = await cv(lab, ['job', 'edit', 'j3', '--vmid', '104', '--force-stop']);
    expect(edit.code, edit.stderr).toBe(0);
    const run = await cv(lab, ['job', 'run', 'j3']);
    const out = run.stdout;
    expect(run.code, `${out}\n${run.stderr}`).toBe(0);
    expect(out).toMatch(/WARN: guest 104 did not power off within 3 s after the ACPI request; stopping it hard \(forceStop\)/);
    expect(out).toContain('Finished Backup of VM 104');
    expect(lineIndex(out, 'stopping it hard')).toBeLessThan(lineIndex(out, 'restarting vm'));
    expect(out).toContain('guest is online again');
    expect(out).toContain('Backup job finished successfully');
    expect(out).not.toMatch(/did not finish; starting it again/); // nothing was left in the stop journal
    expect((await versions(lab, '104')).length).toBe(before + 1);
    expect(await lab.driver!.status('104')).toBe('running');
    await waitBooted(lab, '104', boots + 1, true);
    expect(await readBootCount(stubbornDisk)).toBe(boots + 1);
    // the control for the clean-unmount check above: a hard stop leaves the journal to replay
    const latest = Math.max(...(await versions(lab, '104')).map((v) => v.version));
    const restore = await cv(lab, ['restore', '104', '--version', String(latest), '--new-id', '904', '--store', lab.storeDir]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(await readBootCount(diskPath(lab, '904'))).toBe(boots);
    expect(await ext4Features(diskPath(lab, '904'))).toContain('needs_recovery');
  });
});
