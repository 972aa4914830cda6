/**
 * The overview's computations (jobs/overview), alone: the "full on" forecast (fast-check: a straight
 * line with a positive slope reaches the capacity on the day arithmetic says; flat or falling usage,
 * and too few days, give none), the usage series (one point per day, cumulative), the guest rows'
 * last backup and flags (not backed up, failed, overdue by the job's schedule, verify failed), the
 * job runs' figures from the task store's results, and the rotation read back from the log line the
 * device code writes. Dates are built in local time, as schedules and days are read, so the tests
 * hold in every time zone.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  attachedLine,
  buildOverview,
  dailyUsage,
  dayNumber,
  dayOfNumber,
  FORECAST_MIN_DAYS,
  FORECAST_WINDOW_DAYS,
  forecastFullOn,
  guestAttempts,
  jobRuns,
  leastSquares,
  parseAttachedLine,
  rotationEntries,
  validateJob,
  type DayPoint,
  type JobRef,
  type TaskInfo,
  type VersionRef,
} from '../../src/jobs/index.js';

const TODAY = dayNumber('2025-03-20');
/** `n` days ending today, bytes from `f(i)` (i = 0 for the oldest). */
const series = (n: number, f: (i: number) => number): DayPoint[] => Array.from({ length: n }, (_, i) => ({ day: dayOfNumber(TODAY - n + 1 + i), bytes: f(i) }));

describe('the full-on forecast', () => {
  it('a line with positive slope gives the day it reaches capacity (today + ceil(free / slope))', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: FORECAST_MIN_DAYS, max: 90 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 1000, max: 2 ** 30 }),
        fc.integer({ min: 0, max: 20_000 }),
        (n, base, slope, k) => {
          const free = slope * k + Math.floor(slope / 2); // crossing half-way through day k + 1: no rounding at a day's edge
          const forecast = forecastFullOn(
            series(n, (i) => base + slope * i),
            free,
          );
          expect(forecast.fullOn).toBe(dayOfNumber(TODAY + k + 1));
          expect(forecast.bytesPerDay).toBeCloseTo(slope, 3);
        },
      ),
    );
  });

  it('flat or falling usage gives none (any non-increasing series, with any free space)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 2 ** 32 }), { minLength: FORECAST_MIN_DAYS, maxLength: 90 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        (drops, free) => {
          let level = 2 ** 45;
          const falling = series(drops.length, (i) => (level -= drops[i] as number));
          expect(forecastFullOn(falling, free).fullOn).toBeNull();
        },
      ),
    );
    expect(
      forecastFullOn(
        series(30, () => 5e9),
        1e9,
      ),
    ).toEqual({ fullOn: null, bytesPerDay: 0 });
  });

  it('fewer days than the minimum, an unknown free space, or a crossing beyond 100 years: none', () => {
    expect(
      forecastFullOn(
        series(FORECAST_MIN_DAYS - 1, (i) => i * 1e9),
        1e9,
      ).fullOn,
    ).toBeNull();
    expect(
      forecastFullOn(
        series(FORECAST_MIN_DAYS, (i) => i * 1e9),
        1e9,
      ).fullOn,
    ).not.toBeNull();
    expect(
      forecastFullOn(
        series(20, (i) => i * 1e9),
        null,
      ),
    ).toMatchObject({ fullOn: null, bytesPerDay: 1e9 });
    expect(
      forecastFullOn(
        series(20, (i) => i),
        1e15,
      ).fullOn,
    ).toBeNull();
  });

  it('fits only the last 30 days: an old jump does not count', () => {
    const points = series(60, (i) => (i < 60 - FORECAST_WINDOW_DAYS ? i * 1e9 : 100e9));
    expect(forecastFullOn(points, 1e12).fullOn).toBeNull();
    // the other way round: flat for long, growing lately
    const late = series(60, (i) => (i < 30 ? 0 : (i - 29) * 1e9));
    expect(forecastFullOn(late, 10e9).fullOn).toBe(dayOfNumber(TODAY + 10));
  });

  it('least squares: the textbook example', () => {
    // x = 1..5, y = 2, 4, 5, 4, 5: slope 0.6, intercept 2.2
    const line = leastSquares([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]);
    expect(line?.slope).toBeCloseTo(0.6, 12);
    expect(line?.intercept).toBeCloseTo(2.2, 12);
    expect(leastSquares([3, 3, 3], [1, 2, 3])).toBeUndefined();
  });
});

describe('the usage series', () => {
  it('one point per day from the oldest version to today, cumulative stored bytes', () => {
    const v = (d: number, h: number, storedBytes: number) => ({ time: new Date(2025, 2, d, h).toISOString(), storedBytes });
    const points = dailyUsage([v(3, 23, 5), v(1, 1, 100), v(3, 2, 10), v(6, 12, 1)], new Date(2025, 2, 8, 9));
    expect(points).toEqual([
      { day: '2025-03-01', bytes: 100 },
      { day: '2025-03-02', bytes: 100 },
      { day: '2025-03-03', bytes: 115 },
      { day: '2025-03-04', bytes: 115 },
      { day: '2025-03-05', bytes: 115 },
      { day: '2025-03-06', bytes: 116 },
      { day: '2025-03-07', bytes: 116 },
      { day: '2025-03-08', bytes: 116 },
    ]);
    expect(dailyUsage([], new Date())).toEqual([]);
  });

  it('days are calendar days across a daylight-saving change', () => {
    expect(dayNumber('2025-03-31') - dayNumber('2025-03-29')).toBe(2);
    expect(dayOfNumber(dayNumber('2024-02-29'))).toBe('2024-02-29');
  });
});

// ---- guests ----

const NOW = new Date(2025, 2, 20, 12, 0); // Thursday 2025-03-20 12:00 local
const hoursAgo = (h: number): string => new Date(NOW.getTime() - h * 3_600_000).toISOString();

function job(fields: Record<string, unknown>, created = new Date(2025, 0, 1)): JobRef {
  return {
    job: validateJob({ store: '/srv/main', days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], at: '02:00', ...fields }),
    created,
    storeName: 'main',
  };
}

function version(guestId: string, n: number, time: string, fields: Partial<VersionRef> = {}): VersionRef {
  return {
    guestId,
    store: 'main',
    version: n,
    time,
    logicalBytes: 8e9,
    newBytes: 1e8,
    storedBytes: 5e7,
    downtimeMs: 42_000,
    verifyState: 'ok',
    bootTestOk: null,
    ...fields,
  };
}

function task(id: string, jobId: string, start: string, seconds: number, guests: unknown[], status: 'ok' | 'failed' = 'ok'): TaskInfo {
  const end = new Date(Date.parse(start) + seconds * 1000).toISOString();
  return { id, type: 'backup', jobId, node: 'pve1', status, start, end, pid: 1, host: 'h', summary: null, result: { guests }, startedBy: 'scheduler' };
}

const overviewOf = (jobs: JobRef[], versions: VersionRef[], tasks: TaskInfo[], guests = ['101', '102', '103', '104']) =>
  buildOverview({
    now: NOW,
    node: 'pve1',
    guests: guests.map((id) => ({ id, name: `vm${id}` })),
    stores: [{ name: 'main', dir: '/srv/main', usedBytes: 1e9, freeBytes: 9e9, totalBytes: 1e10, logicalBytes: 4e10, storedBytes: 1e9, versions }],
    jobs,
    tasks,
    deviceLines: [],
    historyDays: 30,
  });

describe('the guest rows', () => {
  // nightly (02:00 daily) covers 101, 102, 103; 104 is in no job. Last night 02:00 = 10 h ago.
  const jobs = [job({ id: 'nightly', vmid: ['101', '102', '103'] })];
  const versions = [
    version('101', 1, hoursAgo(34)),
    version('101', 2, hoursAgo(10 - 0.01), { downtimeMs: 61_000, verifyState: 'unverified' }),
    version('102', 1, hoursAgo(34)),
    version('103', 1, hoursAgo(24 * 5)),
    version('104', 1, hoursAgo(24 * 3), { verifyState: 'failed' }),
  ];
  const tasks = [
    task(
      't2',
      'nightly',
      hoursAgo(10),
      300,
      [
        { vmid: '101', name: 'vm101', status: 'ok', seconds: 120, bytes: 5e7, downtimeMs: 61_000, logicalBytes: 8e9, version: 2 },
        { vmid: '102', name: 'vm102', status: 'failed', seconds: 3, bytes: 0, downtimeMs: 2000, error: 'disk missing' },
      ],
      'failed',
    ),
    task('t1', 'nightly', hoursAgo(34), 200, [
      { vmid: '101', name: 'vm101', status: 'ok', seconds: 100, bytes: 5e7, downtimeMs: 42_000, logicalBytes: 8e9, version: 1 },
      { vmid: '102', name: 'vm102', status: 'ok', seconds: 90, bytes: 5e7, downtimeMs: 40_000, logicalBytes: 8e9, version: 1 },
    ]),
  ];
  const o = overviewOf(jobs, versions, tasks);
  const row = (id: string) => o.guests.find((g) => g.id === id)!;

  it('a guest backed up last night: its version with the run duration, no flag, next run tonight', () => {
    expect(row('101')).toMatchObject({
      covered: true,
      coveringJobs: ['nightly'],
      lastBackup: { result: 'ok', durationMs: 120_000, downtimeMs: 61_000, newBytes: 1e8, logicalBytes: 8e9, job: 'nightly', version: 2, store: 'main' },
      versions: 2,
      verified: 'never',
      daysSinceGood: 0,
      flags: [],
      nextRun: { time: new Date(2025, 2, 21, 2, 0).toISOString(), job: 'nightly' },
    });
  });

  it('a guest whose last run failed: failed (and overdue: last night brought no version)', () => {
    expect(row('102').lastBackup).toMatchObject({ result: 'failed', time: hoursAgo(10), error: 'disk missing', durationMs: 3000, newBytes: null });
    expect(row('102').flags).toEqual(['failed', 'overdue']);
    expect(row('102').daysSinceGood).toBe(1);
  });

  it('a guest with no version since the scheduled run: overdue', () => {
    expect(row('103')).toMatchObject({ flags: ['overdue'], daysSinceGood: 5, lastBackup: { result: 'ok', durationMs: null, job: null } });
  });

  it('a guest no job covers: not-backed-up (and its failed verify)', () => {
    expect(row('104')).toMatchObject({ covered: false, coveringJobs: [], nextRun: null, flags: ['not-backed-up', 'verify-failed'] });
  });

  it('a job that runs later today, or was made after its last scheduled run, does not make a guest overdue yet', () => {
    const recent = overviewOf([job({ id: 'nightly', vmid: ['103'] }, new Date(NOW.getTime() - 3_600_000))], versions, []);
    expect(recent.guests.find((g) => g.id === '103')?.flags).toEqual([]);
    // today's 08:00 run (4 h ago) may still be going (6 h slack): yesterday's is the one expected
    const late = [job({ id: 'nightly', vmid: ['103'], at: '08:00' })];
    expect(overviewOf(late, [version('103', 1, hoursAgo(27))], []).guests[2]?.flags).toEqual([]);
    expect(overviewOf(late, [version('103', 1, hoursAgo(29))], []).guests[2]?.flags).toEqual(['overdue']);
  });

  it('a disabled job covers nothing; a guest with nothing at all has no last backup', () => {
    const o2 = overviewOf([job({ id: 'nightly', vmid: ['105'], enabled: false })], [], [], ['105']);
    expect(o2.guests[0]).toMatchObject({ covered: false, lastBackup: null, lastGood: null, daysSinceGood: null, versions: 0, flags: ['not-backed-up'] });
  });

  it('the datastore: dedup factor, usage, forecast method', () => {
    expect(o.datastores[0]).toMatchObject({ name: 'main', dedupFactor: 40, versions: 5, freeBytes: 9e9 });
    expect(o.datastores[0]?.usage.at(-1)).toEqual({ day: '2025-03-20', bytes: 5 * 5e7 });
    expect(o.datastores[0]?.fullOnMethod).toMatch(/least-squares line through the last 30 days/);
  });

  it('the job runs: duration, throughput of the logical bytes, longest downtime, result', () => {
    expect(o.history.jobs).toEqual([
      {
        id: 'nightly',
        runs: [
          { taskId: 't1', start: hoursAgo(34), durationMs: 200_000, bytesPerSecond: 8e7, downtimeMs: 42_000, result: 'ok', guests: 2 },
          { taskId: 't2', start: hoursAgo(10), durationMs: 300_000, bytesPerSecond: Math.round(8e9 / 300), downtimeMs: 61_000, result: 'failed', guests: 2 },
        ],
      },
    ]);
    expect(guestAttempts(tasks).map((a) => `${a.vmid}:${a.ok}`)).toEqual(['101:true', '102:false', '101:true', '102:true']);
    expect(
      jobRuns(tasks, new Date(NOW.getTime() - 20 * 3_600_000))
        .get('nightly')
        ?.map((r) => r.taskId),
    ).toEqual(['t2']);
  });

  it('a report that is not one (old or foreign JSON) is skipped, not fatal', () => {
    const odd = { ...task('t9', 'nightly', hoursAgo(1), 10, [{ vmid: 101 }, null, 'x']), result: { guests: [{ vmid: 101 }, null, 'x'] } };
    expect(guestAttempts([odd, { ...odd, id: 't8', result: null }])).toEqual([]);
  });
});

describe('the rotation', () => {
  const device = (label: string | null, uuid: string | null) =>
    ({ path: '/dev/sdb1', fstype: 'ext4', label, uuid }) as unknown as Parameters<typeof attachedLine>[1];

  it('reads back the line the device code writes (label, UUID, a cluster node prefix)', () => {
    fc.assert(
      fc.property(
        fc.option(fc.stringMatching(/^[A-Za-z0-9 _,.-]{1,16}$/), { nil: null }),
        fc.option(fc.uuid(), { nil: null }),
        fc.stringMatching(/^(LABEL|UUID)=[A-Za-z0-9-]{1,20}$/),
        (label, uuid, spec) => {
          const line = attachedLine(spec, device(label, uuid));
          expect(parseAttachedLine(line)).toEqual({ node: null, spec, path: '/dev/sdb1', label: label || null, uuid });
          expect(parseAttachedLine(`node pve2: ${line}`)?.node).toBe('pve2');
        },
      ),
    );
    expect(parseAttachedLine('mounted /dev/sdb1 on /mnt/usb')).toBeUndefined();
  });

  it('one entry per run, by day, named by label, else UUID', () => {
    const line = (taskId: string, d: number, label: string | null, uuid: string) => ({
      taskId,
      time: new Date(2025, 2, d, 2, 0, 5).toISOString(),
      message: attachedLine('UUID=a,UUID=b', device(label, uuid)),
    });
    const entries = rotationEntries(
      [
        line('t3', 19, null, 'bbbb'),
        line('t1', 17, 'usb-a', 'aaaa'),
        line('t2', 18, 'usb-b', 'bbbb'),
        line('t2', 18, 'usb-b', 'bbbb'),
        line('tx', 18, 'x', 'x'),
      ],
      new Map([
        ['t1', 'usb'],
        ['t2', 'usb'],
        ['t3', 'usb'],
      ]),
      new Date(2025, 2, 1),
    );
    expect(entries.map((e) => [e.day, e.device, e.job])).toEqual([
      ['2025-03-17', 'usb-a', 'usb'],
      ['2025-03-18', 'usb-b', 'usb'],
      ['2025-03-19', 'bbbb', 'usb'],
    ]);
  });
});
