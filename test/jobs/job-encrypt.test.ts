/**
 * Encryption as a job setting (issue 13), through the built CLI with the FAKE qm of
 * test/guests/fake-qm.ts (no Proxmox host here; real disks, keys, datastore, state database):
 * - `job add --encrypt KEYFILE --encrypt-passphrase-file F`: the job's versions are encrypted with
 *   that key (the manifest names the fingerprint `key show` prints); restore without --keyfile is
 *   refused, with it the disk comes back byte for byte; `job show` / `job list` name the paths only;
 * - a `--kdf none` key needs no passphrase; without a passphrase file, COLDVAULT_KEY_PASSPHRASE of
 *   the process running the job opens the key;
 * - a wrong passphrase, none at all, a missing key file: the run fails before any guest is touched
 *   (not one qm call), and the task log names the job and the key file; a guest a dead run left
 *   stopped is started again all the same (the run backs none up), and none is stopped;
 * - `--no-encrypt` (or `--encrypt ''`) removes the setting; a passphrase file without a key is refused.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, REPO, type CliResult } from '../helpers/fixtures.js';
import { makeGuestDisk } from '../helpers/tiny-guest.js';
import { makeFakeQm, type FakeQm } from '../guests/fake-qm.js';
import { sha256 } from '../cli/cli-lab.js';
import { diskPath, makeJobLab, taskIdOf, writeGuestConf, type JobLab } from './helpers-jobs.js';

const PW = 'job passphrase 13';
let lab: JobLab;
let fake: FakeQm;
let fpPw: string;
let fpPlain: string;
const at = (name: string): string => join(lab.root, name);

/** The CLI with the lab's config and the fake qm first on PATH; COLDVAULT_KEY_PASSPHRASE empty unless given. */
const pcv = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
  cli([...args, '--config', lab.configPath], { env: { PATH: `${fake.dir}:${process.env.PATH ?? ''}`, COLDVAULT_KEY_PASSPHRASE: '', ...env } });

async function ok(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const r = await pcv(args, env);
  expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
}

const manifestOf = (v: number): { encryption?: { fingerprint: string } } =>
  JSON.parse(readFileSync(join(lab.storeDir, 'guests', '101', String(v), 'manifest.json'), 'utf8')) as { encryption?: { fingerprint: string } };

async function versionCount(): Promise<number> {
  return (JSON.parse((await ok(['list', '101', '--store', lab.storeDir, '--json'])).stdout) as unknown[]).length;
}

async function fingerprint(file: string): Promise<string> {
  return (JSON.parse((await ok(['key', 'show', file, '--json'])).stdout) as { fingerprint: string }).fingerprint;
}

beforeAll(async () => {
  lab = await makeJobLab('cv-jenc-');
  fake = await makeFakeQm(lab.guestsDir);
  const config = JSON.parse(readFileSync(lab.configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(lab.configPath, JSON.stringify({ ...config, hypervisor: { driver: 'proxmox' } }, null, 2));
  mkdirSync(join(lab.storageDir, 'images', '101'), { recursive: true });
  await makeGuestDisk(diskPath(lab, '101'), 8);
  const fd = openSync(diskPath(lab, '101'), 'r+');
  writeSync(fd, randomBytes(1 << 20), 0, 1 << 20, 5 << 20); // data the restore must give back
  closeSync(fd);
  writeGuestConf(lab, '101', 'guest101');
  await fake.setState('101', 'running');
  await ok(['key', 'create', at('pw.key')], { COLDVAULT_KEY_PASSPHRASE: PW });
  await ok(['key', 'create', at('plain.key'), '--kdf', 'none']);
  writeFileSync(at('pw.txt'), `${PW}\nignored second line\n`, { mode: 0o600 });
  writeFileSync(at('wrong.txt'), 'not the passphrase\n', { mode: 0o600 });
  fpPw = await fingerprint(at('pw.key'));
  fpPlain = await fingerprint(at('plain.key'));
});

afterAll(async () => {
  await lab?.cleanup();
  await fake?.cleanup();
});

describe('a job with encrypt', () => {
  it('makes encrypted versions with the key of its key file; restore needs the key and gives identical bytes', async () => {
    const added = await ok([
      'job',
      'add',
      'j1',
      '--store',
      lab.storeDir,
      '--vmid',
      '101',
      '--snapshot',
      'off',
      '--encrypt',
      at('pw.key'),
      '--encrypt-passphrase-file',
      at('pw.txt'),
    ]);
    expect(added.stdout).toContain(`encrypted (key file ${at('pw.key')}, passphrase file ${at('pw.txt')})`);
    const shown = await ok(['job', 'show', 'j1', '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: 'j1', encrypt: { keyFile: at('pw.key'), passphraseFile: at('pw.txt') } });
    const listed = await ok(['job', 'list']);
    expect(listed.stdout).toContain(`(encrypted: ${at('pw.key')})`);
    for (const out of [added.stdout, shown.stdout, listed.stdout]) {
      expect(out).not.toContain(PW);
      expect(out).not.toContain(readFileSync(at('pw.key'), 'utf8').slice(0, 40)); // the key file's contents never
    }

    await fake.clearCalls();
    const run = await ok(['job', 'run', 'j1']);
    expect((await fake.calls()).filter((c) => /^(shutdown|start) 101/.test(c)).length).toBe(2); // the guest was stopped and started
    expect(run.stdout).toContain(`--encrypt ${at('pw.key')}`);
    expect(run.stdout).toContain(`encryption: key ${fpPw} from key file '${at('pw.key')}'`);
    expect(run.stdout).not.toContain(PW);
    expect(manifestOf(1).encryption?.fingerprint).toBe(fpPw);
    expect(await fake.state('101')).toBe('running');

    const refused = await pcv(['restore', '101', '--version', '1', '--new-id', '201', '--store', lab.storeDir]);
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toContain(fpPw);
    const restored = await pcv([
      'restore',
      '101',
      '--version',
      '1',
      '--new-id',
      '201',
      '--store',
      lab.storeDir,
      '--keyfile',
      at('pw.key'),
      '--passphrase-file',
      at('pw.txt'),
    ]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(sha256(diskPath(lab, '201'))).toBe(sha256(diskPath(lab, '101')));
  });

  it('a --kdf none key needs no passphrase; without a passphrase file, COLDVAULT_KEY_PASSPHRASE opens the key', async () => {
    await ok(['job', 'add', 'j2', '--store', lab.storeDir, '--vmid', '101', '--snapshot', 'off', '--encrypt', at('plain.key')]);
    await ok(['job', 'run', 'j2']);
    expect(manifestOf(2).encryption?.fingerprint).toBe(fpPlain);

    const edited = await ok(['job', 'edit', 'j1', '--encrypt-passphrase-file', '']);
    expect(JSON.parse((await ok(['job', 'show', 'j1', '--json'])).stdout).encrypt).toEqual({ keyFile: at('pw.key') });
    expect(edited.stdout).toContain(`encrypted (key file ${at('pw.key')})`);
    await ok(['job', 'run', 'j1'], { COLDVAULT_KEY_PASSPHRASE: PW });
    expect(manifestOf(3).encryption?.fingerprint).toBe(fpPw);
  });

  it('a wrong passphrase, none at all, a missing key file: the run fails before any guest is touched, the task log says why', async () => {
    const cases: Array<{ flags: string[]; reason: RegExp }> = [
      { flags: ['--encrypt', at('pw.key'), '--encrypt-passphrase-file', at('wrong.txt')], reason: /passphrase/ },
      { flags: ['--encrypt', at('pw.key')], reason: /has a passphrase and the job none: set the job's encrypt\.passphraseFile/ },
      { flags: ['--encrypt', at('missing.key')], reason: /cannot read key file/ },
      { flags: ['--encrypt', at('pw.key'), '--encrypt-passphrase-file', at('missing.txt')], reason: /cannot read the passphrase file/ },
    ];
    const before = await versionCount();
    for (const [i, { flags, reason }] of cases.entries()) {
      const id = `bad${i}`;
      await ok(['job', 'add', id, '--store', lab.storeDir, '--vmid', '101', '--snapshot', 'off', ...flags]);
      await fake.clearCalls();
      const run = await pcv(['job', 'run', id]);
      expect(run.code, run.stdout).toBe(1);
      expect(await fake.calls()).toEqual([]); // not even a status: no guest touched
      expect(await fake.state('101')).toBe('running');
      const keyFile = flags[1] as string;
      const log = (await pcv(['task', 'log', taskIdOf(run.stdout)])).stdout; // exit 1: the task failed
      const line = log.split('\n').find((l) => l.includes('Backup job failed')) ?? '';
      expect(line, log).toContain(`job '${id}': key file '${keyFile}' could not be opened, so no guest was stopped:`);
      expect(line).toMatch(reason);
      expect(log).not.toContain('Starting Backup of VM');
    }
    expect(await versionCount()).toBe(before);
  });

  it('with a key that cannot be opened, a guest a dead run left stopped is started again, and none is stopped', async () => {
    // a run that died after stopping guest 101: a process records the stop in the journal and exits
    const journal = `import { openStateDb, StopJournal } from '${REPO}/dist/jobs/index.js'; new StopJournal(openStateDb(process.argv[1])).recordStop('101', 'dead-task');`;
    execFileSync(process.execPath, ['--input-type=module', '-e', journal, lab.stateDir]);
    await fake.setState('101', 'stopped');
    await fake.clearCalls();
    const run = await pcv(['job', 'run', 'bad0']); // its passphrase file holds the wrong passphrase
    expect(run.code, run.stdout).toBe(1);
    expect(run.stdout).toMatch(/WARN: guest 101 was stopped by task dead-task .* starting it again/);
    expect(run.stdout).toMatch(/ERROR: Backup job failed - job 'bad0': key file '.*pw\.key' could not be opened/);
    expect(await fake.state('101')).toBe('running');
    expect((await fake.calls()).filter((c) => !/^(status|start) 101/.test(c))).toEqual([]); // started, never shut down
    expect((await pcv(['job', 'run', 'bad0'])).stdout).not.toMatch(/was stopped by task dead-task/); // the journal is clear
  });

  it('--no-encrypt and --encrypt "" remove the setting; a passphrase file alone or on a sync job is refused', async () => {
    await ok(['job', 'edit', 'j2', '--no-encrypt']);
    expect(JSON.parse((await ok(['job', 'show', 'j2', '--json'])).stdout).encrypt).toBeUndefined();
    await ok(['job', 'edit', 'j1', '--encrypt', '']);
    expect((await ok(['job', 'show', 'j1'])).stdout).not.toContain('encrypted');
    const alone = await pcv(['job', 'edit', 'j1', '--encrypt-passphrase-file', at('pw.txt')]);
    expect([alone.code, alone.stderr]).toEqual([2, expect.stringContaining('--encrypt-passphrase-file goes with --encrypt KEYFILE')]);
    const sync = await pcv(['job', 'add', 's1', '--kind', 'sync', '--from', 'node1:main', '--store', lab.storeDir, '--all', '--encrypt', at('plain.key')]);
    expect(sync.code).toBe(1);
    expect(sync.stderr).toMatch(/encrypt is for backup jobs; a sync job copies versions as they are/);
  });
});
