/**
 * The path rule through the API (server from dist/, driver `none`, real files): an API restore to a
 * storage whose images/<newId> leads out of it fails as a task with DISK_PATH_NOT_ALLOWED and writes
 * nothing there; a job started through the API refuses a disk outside the storages, and reads one
 * outside them when the server's allowDiskPaths names it.
 */
import { mkdirSync, readdirSync, symlinkSync, writeFileSync, existsSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, writeGuest, writeImage } from '../helpers/fixtures.js';
import { makeServerLab, waitTask, type ServerLab } from './helpers-server.js';

let lab: ServerLab;
let outside: string;

beforeAll(async () => {
  // the lab's root is tmpdir()/cv-server-XXXXXX: the allow-list names the `outside` folder in it
  lab = await makeServerLab({ config: { allowDiskPaths: [join(tmpdir(), 'cv-server-*', 'outside', '*.raw')] } });
  outside = join(lab.root, 'outside');
  mkdirSync(outside);
  const r = await cli(['backup', '101', ...lab.flags]);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => lab?.close());

async function taskLog(taskId: string): Promise<string> {
  const log = (await lab.api('GET', `/api/v1/tasks/${taskId}/log`)).json() as Array<{ message: string }>;
  return log.map((l) => l.message).join('\n');
}

async function runJobOf(vmid: string): Promise<{ status: string; log: string }> {
  const created = await lab.api('POST', '/api/v1/jobs', { id: `job${vmid}`, store: 'main', vmid: [vmid], days: ['mon'], at: '22:30' });
  expect(created.statusCode, created.body).toBe(201);
  const run = await lab.api('POST', `/api/v1/jobs/job${vmid}/run`);
  expect(run.statusCode, run.body).toBe(202);
  const task = await waitTask(lab, run.json().taskId);
  return { status: task.status, log: await taskLog(run.json().taskId) };
}

describe('the path rule through the API', () => {
  it('a restore to a storage whose images/<newId> is a symlink out of it fails with DISK_PATH_NOT_ALLOWED; nothing is written there', async () => {
    const escape = join(outside, 'escape');
    mkdirSync(escape);
    symlinkSync(escape, join(lab.storageDir, 'images', '201'));
    const res = await lab.api('POST', '/api/v1/restore', { fromPath: 'main', id: '101', version: 1, newId: '201' });
    expect(res.statusCode, res.body).toBe(202);
    const task = await waitTask(lab, res.json().taskId);
    expect(task).toMatchObject({ status: 'failed', result: { code: 'DISK_PATH_NOT_ALLOWED' } });
    expect(await taskLog(res.json().taskId)).toContain(
      `its folder '${join(lab.storageDir, 'images', '201')}' resolves to '${escape}', outside the target storage 'local'`,
    );
    expect(readdirSync(escape)).toEqual([]);
    expect(existsSync(join(lab.guestsDir, '201.conf'))).toBe(false);
  });

  it('a job started through the API refuses /etc/shadow as a disk and stores nothing', async () => {
    writeGuest(lab, '102', [{ key: 'scsi0', file: 'vm-102-disk-0.raw' }]);
    writeImage(join(lab.storageDir, 'images', '102', 'vm-102-disk-0.raw'), ['text'], 2);
    appendFileSync(join(lab.guestsDir, '102.conf'), 'scsi1: /etc/shadow,size=1K\n');
    const { status, log } = await runJobOf('102');
    expect(status).toBe('failed');
    expect(log).toContain("backing up disk 'scsi1' of guest 102 (volume '/etc/shadow') refused");
    expect((await lab.api('GET', '/api/v1/backups?guest=102')).json()).toEqual([]);
  });

  it("a job started through the API reads a disk outside the storages that the server's allowDiskPaths names", async () => {
    writeImage(join(outside, 'data.raw'), ['random'], 3);
    writeFileSync(join(lab.guestsDir, '103.conf'), `name: outside\nscsi0: ${join(outside, 'data.raw')},size=4M\n`);
    const { status, log } = await runJobOf('103');
    expect(status, log).toBe('ok');
    expect((await lab.api('GET', '/api/v1/backups?guest=103')).json()).toHaveLength(1);
  });
});
