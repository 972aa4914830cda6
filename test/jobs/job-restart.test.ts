/**
 * Starting the guest again once its data is frozen (read, or snapshotted), before the version is
 * published, must neither keep the guest off nor throw the backup away. With the FAKE qm of
 * test/guests/fake-qm.ts (no Proxmox host here; real disks, datastore, state database and CLI):
 * - a failing pre-restart hook: the guest is started all the same, the version is published, the
 *   run fails naming the hook;
 * - a start that fails: the version is published, the run fails naming the start, coldvault tries
 *   once more, and the restart journal keeps the guest for the next run or `serve`.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, type CliResult } from '../helpers/fixtures.js';
import { makeGuestDisk } from '../helpers/tiny-guest.js';
import { makeFakeQm, type FakeQm } from '../guests/fake-qm.js';
import { diskPath, hookCalls, lineIndex, makeJobLab, writeGuestConf, writeHook, type JobLab } from './helpers-jobs.js';

let lab: JobLab;
let fake: FakeQm;

const pcv = (args: string[]): Promise<CliResult> => cli([...args, '--config', lab.configPath], { env: { PATH: `${fake.dir}:${process.env.PATH ?? ''}` } });

async function runningGuest(vmid: string): Promise<void> {
  mkdirSync(join(lab.storageDir, 'images', vmid), { recursive: true });
  await makeGuestDisk(diskPath(lab, vmid), 8);
  writeGuestConf(lab, vmid, `guest${vmid}`);
  await fake.setState(vmid, 'running');
}

async function versionCount(vmid: string): Promise<number> {
  const r = await pcv(['list', vmid, '--store', lab.storeDir, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as unknown[]).length;
}

beforeAll(async () => {
  lab = await makeJobLab('cv-jrs-');
  fake = await makeFakeQm(lab.guestsDir);
  const config = JSON.parse(readFileSync(lab.configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(lab.configPath, JSON.stringify({ ...config, hypervisor: { driver: 'proxmox' } }, null, 2));
});

afterAll(async () => {
  await lab?.cleanup();
  await fake?.cleanup();
});

describe('the start after the read', () => {
  it('a failing pre-restart hook does not keep the guest off; the version is kept and the run fails', async () => {
    await runningGuest('101');
    const hook = writeHook(lab, 'hook-fail.sh', 'if [ "$1" = pre-restart ]; then echo "pre-restart says no"; exit 3; fi\n');
    expect((await pcv(['job', 'add', 'j1', '--store', lab.storeDir, '--vmid', '101', '--hook', hook.script])).code).toBe(0);
    const run = await pcv(['job', 'run', 'j1']);
    expect(run.code, run.stdout).toBe(1);
    expect(await fake.state('101')).toBe('running');
    expect(lineIndex(run.stdout, 'restarting vm')).toBeGreaterThan(lineIndex(run.stdout, 'pre-restart says no'));
    expect(run.stdout).toMatch(/ERROR: Backup of VM 101 failed - command '.*hook-fail\.sh pre-restart stop 101' failed: exit code 3/);
    expect(await versionCount('101')).toBe(1);
    const phases = hookCalls(hook.log).map((c) => c.args);
    expect(phases).toContain('backup-end stop 101');
    expect(phases).toContain('backup-abort stop 101');
    expect(phases).not.toContain('post-restart stop 101');
  });

  it('a start that fails: the version is published, the run fails, and the journal keeps the guest to start later', async () => {
    await runningGuest('102');
    writeFileSync(join(fake.dir, 'broken-102'), ''); // its start fails, as a QEMU that cannot open its disk
    expect((await pcv(['job', 'add', 'j2', '--store', lab.storeDir, '--vmid', '102'])).code).toBe(0);
    const run = await pcv(['job', 'run', 'j2']);
    expect(run.code, run.stdout).toBe(1);
    expect(run.stdout).toMatch(/ERROR: guest 102 did not start again: .*; the backup goes on and this guest's run fails at its end/);
    expect(run.stdout).toMatch(/ERROR: Backup of VM 102 failed - guest 102 did not start again/);
    expect(run.stdout).toContain('starting guest 102 again failed'); // tried once more
    expect(await versionCount('102')).toBe(1);
    expect(await fake.state('102')).toBe('stopped');

    // the next run (of any job) starts it from the restart journal
    rmSync(join(fake.dir, 'broken-102'));
    await runningGuest('103');
    expect((await pcv(['job', 'add', 'j3', '--store', lab.storeDir, '--vmid', '103'])).code).toBe(0);
    const next = await pcv(['job', 'run', 'j3']);
    expect(next.code, next.stdout).toBe(0);
    expect(next.stdout).toContain('guest 102 is running again');
    expect(await fake.state('102')).toBe('running');
  });
});
