/**
 * `fullEvery` (days after a full read when a changed-extent nightly reads everything again) and a
 * run's `full`, as the admin sets them: `job add|edit --full-every DAYS` (default 7, 0 = always),
 * the job JSON of the API (schema and job model refuse a negative or non-integer value), and the
 * run route's `?full=true` (a boolean, nothing else). The built CLI and the server from dist/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, makeServerLab, waitTask, type ServerLab } from '../server/helpers-server.js';
import { cv, makeJobLab, type JobLab } from './helpers-jobs.js';

describe('fullEvery on the command line', () => {
  let lab: JobLab;
  beforeAll(async () => {
    lab = await makeJobLab('cv-fullevery-');
  });
  afterAll(async () => lab?.cleanup());

  it('defaults to 7 days, is set by --full-every, and refuses what is not a whole number of days', async () => {
    const added = await cv(lab, ['job', 'add', 'plain', '--store', lab.storeDir, '--vmid', '101', '--json']);
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ id: 'plain', fullEvery: 7 });
    const set = await cv(lab, ['job', 'add', 'weekly', '--store', lab.storeDir, '--vmid', '101', '--full-every', '3', '--json']);
    expect(JSON.parse(set.stdout)).toMatchObject({ fullEvery: 3 });
    const always = await cv(lab, ['job', 'edit', 'weekly', '--full-every', '0', '--json']);
    expect(JSON.parse(always.stdout)).toMatchObject({ fullEvery: 0 });
    const bad = await cv(lab, ['job', 'edit', 'weekly', '--full-every', '2.5']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("fullEvery: '2.5' must be an integer >= 0");
    const listed = await cv(lab, ['job', 'list', '--json']);
    expect((JSON.parse(listed.stdout) as Array<{ id: string; fullEvery: number }>).map((j) => [j.id, j.fullEvery])).toEqual([
      ['plain', 7],
      ['weekly', 0],
    ]);
  });
});

describe('fullEvery and full in the API', () => {
  let lab: ServerLab;
  beforeAll(async () => {
    lab = await makeServerLab();
  });
  afterAll(async () => lab?.close());

  it('keeps fullEvery in the job JSON and refuses a negative one', async () => {
    const created = await lab.api('POST', '/api/v1/jobs', { id: 'nightly', store: 'main', vmid: ['101'], fullEvery: 2 });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({ fullEvery: 2 });
    const replaced = await lab.api('PUT', '/api/v1/jobs/nightly', { store: 'main', vmid: ['101'] });
    expect(replaced.json()).toMatchObject({ fullEvery: 7 }); // replaced: left out takes the default
    const negative = await lab.api('PUT', '/api/v1/jobs/nightly', { store: 'main', vmid: ['101'], fullEvery: -1 });
    expect([negative.statusCode, errorCode(negative)]).toEqual([400, 'INVALID_REQUEST']);
    expect((await lab.api('GET', '/api/v1/jobs/nightly')).json()).toMatchObject({ fullEvery: 7 });
  });

  it('runs a job with ?full=true, and refuses a full that is not a boolean', async () => {
    await lab.api('POST', '/api/v1/jobs', { id: 'full', store: 'main', vmid: ['101'] });
    const wrong = await lab.api('POST', '/api/v1/jobs/full/run?full=maybe');
    expect([wrong.statusCode, errorCode(wrong)]).toEqual([400, 'INVALID_REQUEST']);
    const run = await lab.api('POST', '/api/v1/jobs/full/run?full=true');
    expect(run.statusCode, run.body).toBe(202);
    expect(await waitTask(lab, (run.json() as { taskId: string }).taskId)).toMatchObject({ status: 'ok' });
  });
});
