/**
 * The path rule in `coldvault job run` (built CLI, config file), with the tiny real Linux guest under
 * QEMU (TCG) and a real loop device (root): a running guest with a disk outside the storages fails
 * before the job stops it (the guest keeps running, nothing is stored); a stopped guest whose disk
 * is a block device is refused until the config's allowDiskPaths names it, then backed up.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBootCount } from '../helpers/tiny-guest.js';
import { Loops } from '../jobs/helpers-devices.js';
import { addTinyGuest, bootGuest, cv, makeJobLab, versions, writeGuestConf, type JobLab } from '../jobs/helpers-jobs.js';

let lab: JobLab;
let loops: Loops;

beforeAll(async () => {
  lab = await makeJobLab('cv-dpj-', { qemu: true });
  mkdirSync(join(lab.root, 'loops'));
  loops = new Loops(join(lab.root, 'loops'));
});

afterAll(async () => {
  await loops?.cleanup();
  await lab?.cleanup();
});

async function runJob(id: string, vmid: string): Promise<{ code: number; out: string }> {
  const add = await cv(lab, ['job', 'add', id, '--store', lab.storeDir, '--vmid', vmid]);
  expect(add.code, add.stderr).toBe(0);
  const run = await cv(lab, ['job', 'run', id]);
  return { code: run.code, out: `${run.stdout}\n${run.stderr}` };
}

describe('job run and the path rule', () => {
  it('a running guest with /etc/shadow as a disk fails before it is stopped: still running, nothing stored', async () => {
    const disk = await addTinyGuest(lab, '101', 'web01');
    appendFileSync(join(lab.guestsDir, '101.conf'), 'scsi1: /etc/shadow,size=1K\n');
    await bootGuest(lab, '101');

    const { code, out } = await runJob('j1', '101');
    expect(code, out).toBe(1);
    expect(out).toContain("backing up disk 'scsi1' of guest 101 (volume '/etc/shadow') refused: its real path '/etc/shadow' lies outside every storage");
    expect(out).not.toContain('stopping virtual guest');
    expect(await lab.driver?.status('101')).toBe('running');
    await lab.driver?.shutdown('101', 60_000); // to read its disk: it booted once, coldvault never restarted it
    expect(await readBootCount(disk)).toBe(1);
    expect(await versions(lab, '101')).toEqual([]);
  });

  it('a stopped guest whose disk is a loop device is refused, then backed up once allowDiskPaths names it', async () => {
    const loop = loops.make('disk', '8M');
    writeGuestConf(lab, '102', 'db01');
    const conf = join(lab.guestsDir, '102.conf');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^scsi0: .*$/m, `scsi0: ${loop.path},size=8M`));

    const refused = await runJob('j2', '102');
    expect(refused.code, refused.out).toBe(1);
    expect(refused.out).toContain(`its real path '${loop.path}' is under /dev, where only a block device that allowDiskPaths names is read`);

    const config = JSON.parse(readFileSync(lab.configPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(lab.configPath, JSON.stringify({ ...config, allowDiskPaths: [loop.path] }));
    const run = await cv(lab, ['job', 'run', 'j2']);
    expect(run.code, run.stderr).toBe(0);
    expect((await versions(lab, '102')).map((v) => v.version)).toEqual([1]);
  });
});
