/**
 * The API and the job runner open the catalog through the same path as the CLI: a damaged catalog is
 * moved aside and rebuilt there too, with the WARN in the task's log (the server from dist/, requests
 * through fastify.inject; the job run by the built CLI with driver 'none').
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, writeImage } from '../helpers/fixtures.js';
import { cv, diskPath, makeJobLab, taskIdOf, writeGuestConf, type JobLab } from '../jobs/helpers-jobs.js';
import { makeServerLab, waitTask, type ServerLab } from '../server/helpers-server.js';
import { asideFiles, damage } from './damage-helpers.js';

describe('API on a store whose catalog is damaged', () => {
  let lab: ServerLab;
  const file = (): string => join(lab.storeDir, 'catalog.sqlite');
  beforeAll(async () => {
    lab = await makeServerLab();
    const r = await cli(['backup', '101', ...lab.flags]);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => {
    await lab?.close();
  });

  it('GET /api/v1/backups lists the versions; the damaged file is moved aside', async () => {
    damage(file(), 'flipped page');
    const res = await lab.api('GET', '/api/v1/backups?store=main');
    expect(res.statusCode, res.body).toBe(200);
    expect((res.json() as Array<{ id: string; version: number }>).map((v) => `${v.id}/${v.version}`)).toEqual(['101/1']);
    expect(asideFiles(file())).toHaveLength(1);
  });

  it('a verify task succeeds and its log carries the WARN naming the moved file', async () => {
    damage(file(), 'garbage');
    const res = await lab.api('POST', '/api/v1/verify', { store: 'main', guest: '101' });
    expect(res.statusCode, res.body).toBe(202);
    const { taskId } = res.json() as { taskId: string };
    expect(await waitTask(lab, taskId)).toMatchObject({ status: 'ok', result: { ok: true } });
    const log = (await lab.api('GET', `/api/v1/tasks/${taskId}/log`)).json() as Array<{ level: string; message: string }>;
    const warn = log.find((l) => l.level === 'WARN');
    const moved = asideFiles(file()).map((n) => join(lab.storeDir, n));
    expect(moved).toHaveLength(2);
    expect(warn?.message).toMatch(/catalog '.*' is damaged: .*moved it to '.*' and rebuilding/);
    expect(moved).toContain(/moved it to '([^']+)'/.exec(warn?.message ?? '')?.[1]);
  });
});

describe('a job run on a store whose catalog is damaged', () => {
  let lab: JobLab;
  beforeAll(async () => {
    lab = await makeJobLab('cv-damaged-job-');
    mkdirSync(join(lab.storageDir, 'images', '101'), { recursive: true });
    writeImage(diskPath(lab, '101'), ['random', 'zero', 'text'], 9);
    writeGuestConf(lab, '101', 'web01');
    expect((await cv(lab, ['job', 'add', 'nightly', '--store', lab.storeDir, '--vmid', '101'])).code).toBe(0);
    expect((await cv(lab, ['job', 'run', 'nightly'])).code).toBe(0);
  });
  afterAll(async () => {
    await lab?.cleanup();
  });

  it('backs up, lists both versions, and says in the task log what it moved', async () => {
    damage(join(lab.storeDir, 'catalog.sqlite'), 'truncated');
    const run = await cv(lab, ['job', 'run', 'nightly']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const moved = asideFiles(join(lab.storeDir, 'catalog.sqlite'));
    expect(moved).toHaveLength(1);
    const log = (await cv(lab, ['task', 'log', taskIdOf(run.stdout)])).stdout;
    expect(log).toMatch(new RegExp(`WARN: catalog '.*' is damaged: .*moved it to '${join(lab.storeDir, moved[0] as string)}'`));
    const list = await cv(lab, ['list', '101', '--store', lab.storeDir, '--json']);
    expect((JSON.parse(list.stdout) as Array<{ version: number }>).map((v) => v.version)).toEqual([1, 2]);
  });
});
