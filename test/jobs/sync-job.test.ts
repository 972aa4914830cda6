/**
 * Sync jobs (`job add --kind sync --from NODE:STORE`), run by `coldvault job run` as node2 against a
 * real `coldvault serve` (node1, plain HTTP on 127.0.0.1), onto an external disk: a REAL loop device
 * with ext4 (root), attached as for a backup job (initialised, bound, mounted on the job's store for
 * the run and unmounted after). The run is a task of type sync; keep-N rotates the copy on the disk
 * (and versions the rotation would remove at once are not pulled); a second run fetches no chunk;
 * the report is mailed (a real SMTP server on loopback). A job whose node the ring does not know
 * fails before the disk is touched. The API's job schema takes kind and from.
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, type CliResult } from '../helpers/fixtures.js';
import type { ServeProcess } from '../helpers/serve-process.js';
import { backupOnNode1, makeSyncLab, node2Config, restoredHash, startNode1, type SyncLab } from '../cli/sync-lab.js';
import { imageHash, Loops, mounted, sh, type Loop } from './helpers-devices.js';
import { startSmtpSink, subjectOf } from './helpers-jobs.js';

let lab: SyncLab;
let node1: ServeProcess;
let config: string;
let loops: Loops;
let usb: Loop;
let sink: Awaited<ReturnType<typeof startSmtpSink>>;
let operatorToken = '';
const mnt = (): string => join(lab.root, 'usb');

const run = (args: string[]): Promise<CliResult> => cli([...args, '--config', config]);

interface TaskJson {
  id: string;
  type: string;
  jobId: string | null;
  status: string;
  result: { sync?: { chunks: { fetched: number; present: number }; guests: Array<{ id: string; pulled: number[]; pruned: number[] }> } };
}

/** `job run ID --json`: its task as `task list` shows it. */
async function runJob(id: string): Promise<{ result: CliResult; task: TaskJson }> {
  const result = await run(['job', 'run', id, '--json']);
  const taskId = (JSON.parse(result.stdout.slice(result.stdout.indexOf('\n{') + 1)) as { taskId: string }).taskId;
  const tasks = JSON.parse((await run(['task', 'list', '--json'])).stdout) as TaskJson[];
  return { result, task: tasks.find((t) => t.id === taskId) as TaskJson };
}

/** The guests' version numbers on the disk (mounted by hand, read-only). */
const onDisk = (): Promise<Record<string, number[]>> =>
  loops.byHand(
    usb,
    (dir) => {
      const listing: Record<string, number[]> = {};
      for (const id of ['101', '102']) {
        const guestDir = join(dir, 'guests', id);
        listing[id] = existsSync(guestDir)
          ? sh('ls', [guestDir])
              .split('\n')
              .filter((n) => /^\d+$/.test(n))
              .map(Number)
              .sort((a, b) => a - b)
          : [];
      }
      return listing;
    },
    true,
  );

beforeAll(async () => {
  lab = await makeSyncLab('cv-syncjob-');
  await backupOnNode1(lab, '101');
  await backupOnNode1(lab, '101', { region: 3, seed: 7 });
  await backupOnNode1(lab, '101', { region: 0, seed: 8 });
  await backupOnNode1(lab, '102');
  const made = await cli(['token', 'create', 'ops', '--role', 'operator', '--config', lab.node1Config]);
  expect(made.code, made.stderr).toBe(0);
  operatorToken = made.stdout.split('\n')[0] as string;
  node1 = await startNode1(lab);
  sink = await startSmtpSink();
  const mail = { transport: 'smtp', host: '127.0.0.1', port: sink.port, secure: false, tlsRejectUnauthorized: false, from: 'backup@node2.example.com' };
  config = node2Config(lab, node1.url, { mail });
  loops = new Loops(mkdtempSync(join(tmpdir(), 'cv-syncjob-loops-')));
  usb = loops.make('usb', '160M', (dev) => sh('mkfs.ext4', ['-q', '-F', '-L', 'cvsync', dev]));
  mkdirSync(mnt());
});
afterAll(async () => {
  await loops?.cleanup([mnt()]);
  await node1?.stop();
  await sink?.close();
  lab?.cleanup();
});

describe('sync job onto a USB disk (loop device, ext4)', () => {
  it('pulls every guest onto the disk, mounted for the run only; keep 2 pulls only the versions it keeps; restores byte-identical; mails the report', async () => {
    const add = await run([
      'job',
      'add',
      'offsite',
      '--kind',
      'sync',
      '--from',
      'node1:main',
      '--store',
      mnt(),
      '--device',
      `UUID=${usb.uuid}`,
      '--init-device',
      '--all',
      '--keep',
      '2',
      '--mailto',
      'ops@example.com',
    ]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/sync from node1:main: all guests ->/);
    const { result, task } = await runJob('offsite');
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(await mounted(mnt())).toBe(false);
    expect([task.type, task.jobId, task.status]).toEqual(['sync', 'offsite', 'ok']);
    expect(task.result.sync?.chunks.fetched).toBeGreaterThan(0);
    expect(result.stdout).toMatch(/mounted .* on '.*usb'/);
    expect(result.stdout).toMatch(/guest 101: version\(s\) 1 not pulled: older than the ones the keep rotation keeps/);
    expect(await onDisk()).toEqual({ '101': [2, 3], '102': [1] });
    const hash = await loops.byHand(usb, (dir) => restoredHash(lab, dir, '101', 3, '801'));
    expect(hash).toBe(lab.imageAt.get('101/3'));
    expect(subjectOf(sink.got.at(-1)?.raw ?? '')).toMatch(/job offsite\): backup successful/);
  });

  it('a second run fetches no chunk; after a new version on node1 the next run pulls it and rotates the oldest away', async () => {
    const again = await runJob('offsite');
    expect(again.result.code, again.result.stdout).toBe(0);
    expect(again.task.result.sync?.chunks.fetched).toBe(0);
    expect(await onDisk()).toEqual({ '101': [2, 3], '102': [1] });
    await backupOnNode1(lab, '101', { region: 3, seed: 9 }); // version 4
    const next = await runJob('offsite');
    expect(next.result.code, next.result.stdout).toBe(0);
    const g101 = next.task.result.sync?.guests.find((g) => g.id === '101');
    expect([g101?.pulled, g101?.pruned]).toEqual([[4], [2]]);
    expect(await onDisk()).toEqual({ '101': [3, 4], '102': [1] });
    expect(await mounted(mnt())).toBe(false);
  });

  it('a sync job from a node the ring does not know fails before the disk is touched', async () => {
    const before = imageHash(usb);
    expect((await run(['job', 'add', 'lost', '--kind', 'sync', '--from', 'node9:main', '--store', mnt(), '--device', `UUID=${usb.uuid}`, '--all'])).code).toBe(
      0,
    );
    const { result, task } = await runJob('lost');
    expect(result.code).toBe(1);
    expect(task.status).toBe('failed');
    expect(result.stdout).toMatch(/ERROR: Sync job failed - no node 'node9' in the config's cluster.nodes/);
    expect(imageHash(usb)).toBe(before);
    expect(await mounted(mnt())).toBe(false);
  });

  it('a sync job needs NODE:STORE in from; from and hooks are refused where they do not belong', async () => {
    const noFrom = await run(['job', 'add', 'bad1', '--kind', 'sync', '--store', mnt(), '--vmid', '101']);
    expect([noFrom.code, noFrom.stderr]).toEqual([1, expect.stringMatching(/a sync job needs from: 'NODE:STORE'/) as unknown]);
    const backupWithFrom = await run(['job', 'add', 'bad2', '--from', 'node1:main', '--store', mnt(), '--vmid', '101']);
    expect(backupWithFrom.stderr).toMatch(/from goes only with kind sync/);
    const hooked = await run(['job', 'add', 'bad3', '--kind', 'sync', '--from', 'node1:main', '--store', mnt(), '--vmid', '101', '--hook', '/bin/true']);
    expect(hooked.stderr).toMatch(/hook and scripts are for backup jobs/);
  });

  it("the API's job schema takes kind and from", async () => {
    const body = { id: 'pull', store: 'main', kind: 'sync', from: 'node2:main', vmid: ['101'] };
    const res = await fetch(`${node1.url}/api/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(answer)).toBe(201);
    expect([answer.kind, answer.from]).toEqual(['sync', 'node2:main']);
    const bad = await fetch(`${node1.url}/api/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, id: 'pull2', from: 'relative/folder' }),
    });
    expect(bad.status).toBe(400);
  });
});
