/**
 * Schedules and the scheduler: a job runs at its weekday + minute (local time) exactly once, a run
 * missed while the service was down runs once at start within the grace period, a job never runs
 * twice at once. The clock is a controllable one (the scheduler's `now`); the database is a real
 * SQLite file in a temp dir.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTaskLog } from '../../src/core/log.js';
import {
  boundDatastores,
  deviceSpecs,
  JobStore,
  lastRunBefore,
  nextRun,
  openStateDb,
  parseCron,
  Scheduler,
  validateJob,
  weeklySpec,
  type Job,
  type StateDb,
} from '../../src/jobs/index.js';

describe('schedules', () => {
  it('finds the next weekday + time in local time', () => {
    const spec = weeklySpec(['mon', 'fri'], '22:30');
    const wed = new Date(2031, 0, 1, 12, 0); // Wednesday 1 Jan 2031
    expect(nextRun(spec, wed)).toEqual(new Date(2031, 0, 3, 22, 30)); // Friday
    expect(nextRun(spec, new Date(2031, 0, 3, 22, 30))).toEqual(new Date(2031, 0, 6, 22, 30)); // then Monday
  });

  it('parses cron expressions with lists, ranges, steps and names', () => {
    const spec = parseCron('*/15 2-3 * * mon-fri');
    const sat = new Date(2031, 0, 4, 1, 0); // Saturday
    expect(nextRun(spec, sat)).toEqual(new Date(2031, 0, 6, 2, 0));
    expect(nextRun(spec, new Date(2031, 0, 6, 2, 0))).toEqual(new Date(2031, 0, 6, 2, 15));
    expect(() => parseCron('61 * * * *')).toThrow(/out of range/);
    expect(() => parseCron('* * *')).toThrow(/5 fields/);
  });

  it('finds the last scheduled minute within a window', () => {
    const spec = weeklySpec(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], '03:00');
    const at = new Date(2031, 0, 1, 3, 40);
    expect(lastRunBefore(spec, at, new Date(2031, 0, 1, 2, 0))).toEqual(new Date(2031, 0, 1, 3, 0));
    expect(lastRunBefore(spec, at, new Date(2031, 0, 1, 3, 1))).toBeUndefined();
  });

  it('refuses bad jobs with clear errors', () => {
    expect(() => validateJob({ id: 'j', store: '/s', vmid: ['12'] })).toThrow(/not a guest id/);
    expect(() => validateJob({ id: 'j', store: '/s', vmid: ['101'], all: true })).toThrow(/either guest ids/);
    expect(() => validateJob({ id: 'j', store: '/s', all: true, at: '25:00' })).toThrow(/not a time/);
    expect(() => validateJob({ id: 'j', store: '/s', all: true, days: ['mon', 'xyz'] })).toThrow(/xyz/);
    expect(() => validateJob({ id: 'j', store: '/s', all: true, bogus: 1 })).toThrow(/unknown job field/);
    expect(() => validateJob({ id: '1bad', store: '/s', all: true })).toThrow(/job id/);
    expect(validateJob({ id: 'ok', store: '/s', vmid: '101,102', days: 'Mon,tue', at: '2:05' })).toMatchObject({
      vmid: ['101', '102'],
      days: ['mon', 'tue'],
      at: '02:05',
      stopTimeout: 600,
      lockWait: 180,
    });
  });

  it('takes rotated disks as a comma list, refusing empty entries, a disk named twice and more bindings than disks', () => {
    const base = { id: 'j', store: '/s', all: true };
    const job = validateJob({ ...base, device: 'UUID=a, LABEL=b', deviceDatastoreId: 'x' });
    expect(deviceSpecs(job)).toEqual(['UUID=a', 'LABEL=b']);
    expect(boundDatastores(job)).toEqual(['x']);
    expect(() => validateJob({ ...base, device: 'UUID=a,,UUID=b' })).toThrow(/empty entry/);
    expect(() => validateJob({ ...base, device: 'UUID=a,UUID=a' })).toThrow(/names a disk twice/);
    expect(() => validateJob({ ...base, device: 'UUID=a', deviceDatastoreId: 'x,y' })).toThrow(/2 bound datastores for 1 disk/);
  });
});

describe('scheduler', () => {
  let dir: string;
  let db: StateDb;
  let jobs: JobStore;
  let clock: Date;
  let runs: Array<{ id: string; at: Date; finish: () => void }>;
  const log = createTaskLog();

  const scheduler = (): Scheduler =>
    new Scheduler({
      db,
      jobs,
      log,
      now: () => clock,
      graceMinutes: 60,
      run: (job: Job, at: Date) => new Promise<void>((resolve) => runs.push({ id: job.id, at, finish: resolve })),
    });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cv-sched-'));
    db = openStateDb(dir);
    jobs = new JobStore(db);
    runs = [];
    // the clock starts in the future: a job is never due for a minute before it was created
    clock = new Date(2031, 0, 6, 22, 29, 0); // Monday
    jobs.add({ id: 'nightly', store: '/s', all: true, days: ['mon', 'wed'], at: '22:30' });
  });

  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts a job at its set minute, once, and not while its run goes on', async () => {
    const s = scheduler();
    s.tick();
    expect(runs).toHaveLength(0); // 22:29: not yet
    clock = new Date(2031, 0, 6, 22, 30, 5);
    s.tick();
    expect(runs.map((r) => r.id)).toEqual(['nightly']);
    expect(runs[0]?.at).toEqual(new Date(2031, 0, 6, 22, 30));
    clock = new Date(2031, 0, 6, 22, 30, 40);
    s.tick(); // same minute again: not twice
    clock = new Date(2031, 0, 8, 22, 30, 1); // Wednesday, the first run still going
    s.tick();
    expect(runs).toHaveLength(1);
    expect(log.lines.some((l) => /previous run is still going/.test(l.message))).toBe(true);
    runs[0]?.finish();
    await s.idle();
    clock = new Date(2031, 0, 13, 22, 30, 1); // next Monday
    s.tick();
    expect(runs).toHaveLength(2);
    runs[1]?.finish();
    await s.idle();
  });

  it('runs a run missed while down once at start within the grace period, and not one older than it', async () => {
    db.prepare('INSERT INTO job_runs (job_id, last_scheduled) VALUES (?, ?)').run('nightly', new Date(2031, 0, 1, 22, 30).toISOString());
    clock = new Date(2031, 0, 6, 23, 10); // started 40 min after Monday's run
    const s = scheduler();
    s.tick(true);
    expect(runs.map((r) => r.at)).toEqual([new Date(2031, 0, 6, 22, 30)]);
    runs[0]?.finish();
    await s.idle();
    s.tick(true); // a restart does not run it again
    expect(runs).toHaveLength(1);

    clock = new Date(2031, 0, 9, 12, 0); // Friday: Wednesday's run was missed by more than the grace
    const later = scheduler();
    later.tick(true);
    expect(runs).toHaveLength(1);
    expect(log.lines.some((l) => /missed its run/.test(l.message))).toBe(true);
  });

  it('leaves disabled jobs alone', () => {
    jobs.edit('nightly', { enabled: false });
    clock = new Date(2031, 0, 6, 22, 30, 5);
    scheduler().tick();
    expect(runs).toHaveLength(0);
  });
});
