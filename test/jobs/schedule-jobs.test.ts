/**
 * Schedules in use, in Europe/Zurich: the scheduler (real SQLite state, its clock driven by the test
 * tick by tick through the two nights the clocks change) starts a job at 02:30 once each night,
 * whether it is written as a calendar event, as cron or as weekdays + time, and a run missed while
 * the service was down over the jump once within the grace period; `coldvault job list` / `show`
 * (the real CLI, TZ=Europe/Zurich) and GET /api/v1/jobs (the server from dist/, its clock the lab's)
 * show the next run that systemd-analyze computes for the same calendar event.
 */
process.env.TZ = 'Europe/Zurich'; // the node's local time, for the scheduler and the in-process server

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTaskLog } from '../../src/core/log.js';
import { JobStore, openStateDb, Scheduler, type Job, type StateDb } from '../../src/jobs/index.js';
import { cli, makeLab, writeServeConfig, type Lab } from '../helpers/fixtures.js';
import { errorCode, makeServerLab, type ServerLab } from '../server/helpers-server.js';
import { iso, systemdRuns, ZONE } from './helpers-schedule.js';

const TICK = 15_000;

describe('the scheduler on the nights the clocks change', () => {
  let dir: string;
  let db: StateDb;
  let jobs: JobStore;
  let clock: Date;
  let runs: Array<{ id: string; at: Date }>;
  const log = createTaskLog();

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cv-sched-dst-'));
    db = openStateDb(dir);
    jobs = new JobStore(db);
    runs = [];
    jobs.add({ id: 'event', store: '/s', all: true, schedule: '02:30' });
    jobs.add({ id: 'cron', store: '/s', all: true, schedule: '30 2 * * *' });
    jobs.add({ id: 'weekly', store: '/s', all: true, days: ['sun'], at: '02:30' });
    db.prepare("UPDATE jobs SET created = '2027-01-01T00:00:00.000Z'").run();
  });

  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const scheduler = (): Scheduler =>
    new Scheduler({
      db,
      jobs,
      log,
      now: () => clock,
      graceMinutes: 60,
      run: async (job: Job, at: Date) => {
        runs.push({ id: job.id, at });
      },
    });

  /** Ticks every 15 s from `from` to `to` (instants), letting each run end. */
  async function tickThrough(s: Scheduler, from: string, to: string): Promise<void> {
    for (let t = Date.parse(from); t <= Date.parse(to); t += TICK) {
      clock = new Date(t);
      s.tick();
      await s.idle();
    }
  }

  it('starts a job at 02:30 once on each night, whichever way it is written', async () => {
    const s = scheduler();
    clock = new Date('2027-03-27T22:00:00Z');
    s.tick(true);
    await tickThrough(s, '2027-03-27T22:00:00Z', '2027-03-28T04:00:00Z'); // 23:00 CET to 06:00 CEST
    await tickThrough(s, '2027-10-30T22:00:00Z', '2027-10-31T05:00:00Z'); // 00:00 CEST to 06:00 CET
    const byJob = (id: string) => runs.filter((r) => r.id === id).map((r) => iso(r.at));
    const expected = ['2027-03-28T01:00:00.000Z', '2027-10-31T00:30:00.000Z']; // 03:00 CEST (the jump); 02:30 CEST (the first)
    expect(byJob('event')).toEqual(expected);
    expect(byJob('cron')).toEqual(expected);
    expect(byJob('weekly')).toEqual(expected);
  });

  it('runs the run at the jump once at start-up when the service was down over it, within the grace period', async () => {
    db.prepare('INSERT INTO job_runs (job_id, last_scheduled) VALUES (?, ?)').run('event', '2027-03-27T01:30:00.000Z');
    clock = new Date('2027-03-28T01:40:00Z'); // started at 03:40 CEST, 40 min after the jump
    const s = scheduler();
    s.tick(true);
    await s.idle();
    expect(runs.filter((r) => r.id === 'event').map((r) => iso(r.at))).toEqual(['2027-03-28T01:00:00.000Z']);
    await tickThrough(s, '2027-03-28T01:40:15Z', '2027-03-28T03:00:00Z');
    expect(runs.filter((r) => r.id === 'event')).toHaveLength(1);
  });
});

/** systemd-analyze's next elapse of `expr` after now, asked before and after `action` (a minute may turn meanwhile). */
async function referenceAround<T>(expr: string, now: () => Date, action: () => Promise<T>): Promise<{ result: T; expected: string[] }> {
  const before = await systemdRuns(expr, now(), 1);
  const result = await action();
  const after = await systemdRuns(expr, now(), 1);
  return { result, expected: [...before, ...after].map(iso) };
}

describe('the next run in `job list` and the API', () => {
  let lab: Lab;
  let config: string;
  let server: ServerLab;
  const env = { TZ: ZONE };

  beforeAll(async () => {
    lab = makeLab('cv-sched-list-');
    config = writeServeConfig(lab, 'testnode', 'state');
    server = await makeServerLab();
  });
  afterAll(async () => {
    lab?.cleanup();
    await server?.close();
  });

  it('`coldvault job list` and `job show` name the next run of a calendar event in local time', async () => {
    const add = (id: string, schedule: string) =>
      cli(['job', 'add', id, '--store', lab.storeDir, '--all', '--schedule', schedule, '--config', config], { env });
    expect((await add('gap', '2031-03-30 02:30')).code).toBe(0); // in the hour the clocks skip that night
    const added = await add('workdays', 'mon..fri 22:30');
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/schedule 'mon\.\.fri 22:30' \(next run \d{4}-\d\d-\d\d 22:30 \+0[12]:00\)/);

    const listed = await cli(['job', 'list', '--config', config], { env });
    expect(listed.stdout).toMatch(/^gap .* 2031-03-30 03:00 \+02:00 .*\(schedule '2031-03-30 02:30'\)$/m);
    const { result, expected } = await referenceAround(
      'mon..fri 22:30',
      () => new Date(),
      () => cli(['job', 'list', '--json', '--config', config], { env }),
    );
    const json = JSON.parse(result.stdout) as Array<{ id: string; nextRun: string | null }>;
    expect(json.find((j) => j.id === 'gap')?.nextRun).toBe('2031-03-30T01:00:00.000Z');
    expect(expected).toContain(json.find((j) => j.id === 'workdays')?.nextRun);

    expect((await cli(['job', 'edit', 'workdays', '--disabled', '--config', config], { env })).code).toBe(0);
    const shown = JSON.parse((await cli(['job', 'show', 'workdays', '--json', '--config', config], { env })).stdout) as { nextRun: string | null };
    expect(shown.nextRun).toBeNull(); // a disabled job does not run
    const bad = await add('bad', 'mon..fry 22:30');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("schedule 'mon..fry 22:30' (a calendar event): 'fry' is not a weekday");
  });

  it('GET /api/v1/jobs answers the next run by the server clock; a job sent back with it is accepted', async () => {
    const created = await server.api('POST', '/api/v1/jobs', { id: 'weekend', store: 'main', vmid: ['101'], schedule: 'sat 18:15' });
    expect(created.statusCode, created.body).toBe(201);
    server.advance(3 * 86_400_000); // the server's clock, not the machine's
    const now = () => new Date(server.clock());
    const { result, expected } = await referenceAround('sat 18:15', now, () => server.api('GET', '/api/v1/jobs'));
    const [job] = result.json() as Array<Record<string, unknown>>;
    expect(expected).toContain(job?.nextRun);

    const resent = await server.api('PUT', '/api/v1/jobs/weekend', { ...job, schedule: 'sun 18:15' });
    expect(resent.statusCode, resent.body).toBe(200);
    expect(resent.json()).toMatchObject({ schedule: 'sun 18:15' });
    const [sunday] = await systemdRuns('sun 18:15', now(), 1);
    expect(resent.json().nextRun).toBe(sunday && iso(sunday));

    const bad = await server.api('PUT', '/api/v1/jobs/weekend', { ...job, schedule: '*-13-01' });
    expect([bad.statusCode, errorCode(bad)]).toEqual([400, 'JOB_INVALID']);
    expect(bad.json().error.message).toMatch(/month 13 in '13' is out of range \(1-12\)/);
  });
});
