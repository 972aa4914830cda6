/** The dashboard's model: API JSON in, chart series / gauge / rotation rows / usage lines / layout out. */
import { describe, expect, it } from 'vitest';
import type { BackupJson, JobJson, RunningTask } from '../../src/dashboard/api.js';
import {
  addSample,
  chartData,
  coveringJob,
  dedupRatio,
  emptySeries,
  fitLabel,
  formatRatio,
  gaugeOf,
  guestRows,
  guestTable,
  layout,
  logTaskId,
  mainTask,
  niceMax,
  rateBetween,
  rotationRows,
  rotationTable,
  sampleOf,
  shortBytes,
  shortDuration,
  throughputLabel,
  toDate,
  usageLines,
  type Rect,
} from '../../src/dashboard/model.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function task(readMiB: number, writtenMiB: number, elapsed: number, extra: { taskId?: string; item?: string; total?: number } = {}): RunningTask {
  return {
    taskId: extra.taskId ?? 't1',
    type: 'backup',
    jobId: 'daily',
    progress: {
      phase: 'backup',
      item: extra.item ?? 'scsi0',
      totalBytes: extra.total ?? 4 * GiB,
      readBytes: readMiB * MiB,
      writtenBytes: writtenMiB * MiB,
      zeroBytes: 0,
      dedupBytes: 0,
      elapsedSeconds: elapsed,
    },
  };
}

function backup(id: string, version: number, time: string, logical: number, stored: number): BackupJson {
  return { id, version, time, logicalBytes: logical, storedBytes: stored, zeroBytes: 0, newBytes: stored };
}

const job = (j: Partial<JobJson> & { id: string }): JobJson => ({ store: 'usb1', vmid: [], all: false, exclude: [], enabled: true, ...j });

describe('throughput from progress samples', () => {
  it('is the change of read / written bytes over the change of elapsed seconds, in MiB/s', () => {
    const a = sampleOf(task(100, 40, 2));
    const b = sampleOf(task(300, 90, 4));
    expect(rateBetween(a, b!)).toEqual({ read: 100, write: 25 });
  });

  it('has no rate without a previous sample, across tasks or items, when time stands still or bytes go back', () => {
    const b = sampleOf(task(300, 90, 4))!;
    expect(rateBetween(undefined, b)).toBeUndefined();
    expect(rateBetween(sampleOf(task(100, 40, 2, { taskId: 't0' })), b)).toBeUndefined();
    expect(rateBetween(sampleOf(task(100, 40, 2, { item: 'scsi1' })), b)).toBeUndefined();
    expect(rateBetween(sampleOf(task(300, 90, 4)), b)).toBeUndefined();
    expect(rateBetween(sampleOf(task(400, 90, 3)), b)).toBeUndefined();
  });

  it('builds the series poll by poll: baseline, points, nothing for a stale sample, 0 when idle, a new baseline per item', () => {
    let s = emptySeries();
    s = addSample(s, task(0, 0, 0), 't0');
    expect(s.read).toEqual([]);
    s = addSample(s, task(50, 20, 1), 't1');
    s = addSample(s, task(150, 30, 2), 't2');
    expect(s.read).toEqual([50, 100]);
    expect(s.write).toEqual([20, 10]);
    expect(s.labels).toEqual(['t1', 't2']);
    expect(addSample(s, task(150, 30, 2), 't3')).toBe(s);
    s = addSample(s, task(10, 5, 0.5, { item: 'scsi1' }), 't4');
    expect(s.read).toEqual([50, 100]);
    s = addSample(s, task(30, 5, 1, { item: 'scsi1' }), 't5');
    expect(s.read).toEqual([50, 100, 40]);
    s = addSample(s, undefined, 't6');
    expect(s.read).toEqual([50, 100, 40, 0]);
    expect(s.last).toBeUndefined();
  });

  it('keeps the newest maxPoints points', () => {
    let s = emptySeries();
    for (let i = 0; i <= 10; i++) s = addSample(s, task(i * 10, 0, i), `t${i}`, 4);
    expect(s.read).toEqual([10, 10, 10, 10]);
    expect(s.labels).toEqual(['t7', 't8', 't9', 't10']);
  });

  it('gives the chart at least two points and a round, non-empty y range', () => {
    expect(chartData(emptySeries())).toEqual({ x: [' ', ' '], read: [0, 0], write: [0, 0], maxY: 1 });
    const s = { labels: ['a', 'b', 'c'], read: [10, 48, 30], write: [5, 16, 9] };
    expect(chartData(s).maxY).toBe(100);
    expect([niceMax(0), niceMax(1.5), niceMax(3), niceMax(7), niceMax(52.8), niceMax(120)]).toEqual([1, 2, 5, 10, 100, 200]);
  });

  it('labels the chart with the newest rates, shorter when the box is narrow', () => {
    expect(throughputLabel({ read: 48, write: 16.04 })).toBe(' Throughput MiB/s  read 48.0  write 16.0 ');
    expect(throughputLabel({ read: 48, write: 16 }, 30)).toBe(' MiB/s read 48.0 write 16.0 ');
    expect(throughputLabel({ read: 48, write: 16 }, 10)).toBe(' r 48.0 w 16.0 ');
    expect(throughputLabel({ read: 1, write: 2 }, 80, (t, s) => `<${s}>${t}`)).toBe(' Throughput MiB/s  <read>read 1.0  <write>write 2.0 ');
  });
});

describe('the running task', () => {
  it('follows the first running task with progress', () => {
    const idle: RunningTask = { taskId: 'r0', type: 'restore', progress: null };
    expect(mainTask({ running: [idle, task(1, 1, 1)] })?.taskId).toBe('t1');
    expect(mainTask({ running: [idle] })?.taskId).toBe('r0');
    expect(mainTask({ running: [] })).toBeUndefined();
    expect(mainTask(undefined)).toBeUndefined();
  });

  it('gauges readBytes / totalBytes with the bytes, elapsed time and ETA', () => {
    const g = gaugeOf(task(1024, 100, 20));
    expect(g.percent).toBe(25);
    expect(g.label).toBe(' backup daily scsi0 ');
    expect(g.lines).toEqual(['1.0 GiB of 4.0 GiB', '20s, ETA 1m00s']);
    expect(gaugeOf(task(0, 0, 0, { total: 0 })).percent).toBe(0);
    expect(gaugeOf(undefined)).toEqual({ percent: 0, label: ' no task running ', lines: [] });
  });

  it('shows the log of the followed task, else of the newest task', () => {
    const tasks = [
      { id: 'old', status: 'ok', type: 'backup', start: '2025-01-01T00:00:00Z' },
      { id: 'new', status: 'failed', type: 'backup', start: '2025-01-02T00:00:00Z' },
    ];
    expect(logTaskId({ running: [task(1, 1, 1)] }, tasks)).toBe('t1');
    expect(logTaskId({ running: [] }, tasks)).toBe('new');
    expect(logTaskId(undefined, [])).toBeUndefined();
  });
});

describe('rotation rows', () => {
  const jobs = [
    job({ id: 'daily', vmid: ['101', '102', '104'], keep: 3 }),
    job({ id: 'weekly', all: true, exclude: ['101', '102', '104'], keep: 5 }),
    job({ id: 'old', vmid: ['101'], keep: 9, enabled: false }),
    job({ id: 'other', store: '/mnt/usb2', vmid: ['101'], keep: 2 }),
  ];
  const backups = [
    backup('101', 2, '2025-02-25T02:00:00Z', 8 * GiB, 1 * GiB),
    backup('101', 1, '2025-02-24T02:00:00Z', 8 * GiB, 3 * GiB),
    backup('101', 3, '2025-02-26T02:00:00Z', 8 * GiB, 0),
    backup('1000', 1, '2025-02-20T02:00:00Z', 2 * GiB, 0),
    backup('103', 1, '2025-02-20T02:00:00Z', 4 * GiB, 1 * GiB),
  ];

  it('counts versions kept against keep N of the covering job, with oldest, newest, sizes and dedup ratio', () => {
    const rows = rotationRows([{ store: 'usb1', dir: '/mnt/usb1', backups }], jobs);
    expect(rows.map((r) => [r.guest, r.kept, r.keep])).toEqual([
      ['101', 3, 3],
      ['102', 0, 3],
      ['103', 1, 5],
      ['104', 0, 3],
      ['1000', 1, 5],
    ]);
    const r101 = rows[0]!;
    expect(r101.oldest).toMatch(/^25-02-2[34] \d\d:\d\d$/);
    expect(r101.newest).toMatch(/^25-02-2[56] \d\d:\d\d$/);
    expect(r101.logicalBytes).toBe(24 * GiB);
    expect(r101.storedBytes).toBe(4 * GiB);
    expect(r101.ratio).toBe(6);
    expect(rows[1]!.oldest).toBeUndefined();
    expect(rows[4]!.ratio).toBeUndefined();
  });

  it('matches jobs to the store by name or folder, prefers enabled jobs, takes any job when the store is unknown', () => {
    expect(coveringJob(jobs, '101', 'usb1')?.id).toBe('daily');
    expect(coveringJob(jobs, '101', 'usb2', '/mnt/usb2')?.id).toBe('other');
    expect(coveringJob(jobs, '103', 'usb1')?.id).toBe('weekly');
    expect(coveringJob(jobs, '104', 'usb2', '/mnt/usb2')).toBeUndefined();
    expect(coveringJob([job({ id: 'off', vmid: ['7'], enabled: false })], '7', 'usb1')?.id).toBe('off');
    expect(coveringJob(jobs, '101', '')?.id).toBe('daily');
    const rows = rotationRows([{ store: 'usb2', dir: '/mnt/usb2', backups: [backup('101', 1, '2025-02-24T02:00:00Z', 1, 1)] }], jobs);
    expect(rows.map((r) => `${r.guest}:${r.kept}/${r.keep}`)).toEqual(['101:1/2']);
  });

  it('computes the dedup ratio as logical / stored', () => {
    expect(dedupRatio(10 * GiB, 2 * GiB)).toBe(5);
    expect(dedupRatio(10, 0)).toBeUndefined();
    expect([formatRatio(5), formatRatio(12.345), formatRatio(250.4), formatRatio(undefined)]).toEqual(['5.0x', '12.3x', '250x', '-']);
  });

  it('renders the table, dropping Store, Oldest, Newest, then the sizes as the width shrinks', () => {
    const rows = rotationRows([{ store: 'usb1', backups }], jobs);
    const wide = rotationTable(rows, 78);
    expect(wide.headers).toEqual(['Guest', 'Store', 'Kept', 'Oldest', 'Newest', 'Logical', 'Stored', 'Dedup']);
    expect(wide.data[0]).toEqual(['101', 'usb1', '3/3', rows[0]!.oldest, rows[0]!.newest, '24.0 GiB', '4.0 GiB', '6.0x']);
    expect(wide.data[2]![2]).toBe('1/5');
    expect(rotationTable(rows, 60).headers).toEqual(['Guest', 'Kept', 'Newest', 'Logical', 'Stored', 'Dedup']);
    expect(rotationTable(rows, 30).headers).toEqual(['Guest', 'Kept', 'Dedup']);
    const keepAll = rotationRows([{ store: 'usb1', backups }], [job({ id: 'j', vmid: ['101'] })]);
    expect(rotationTable(keepAll, 78).data[0]![2]).toBe('3/-');
  });
});

describe('datastore usage', () => {
  const ds = [
    { name: 'usb1', dir: '/mnt/usb1', used: 300 * GiB, free: 700 * GiB, total: 1000 * GiB },
    { name: 'nas', used: 1 * GiB, free: 3 * GiB },
    { name: 'gone', error: 'ENOENT' },
  ];

  it('shows used / free per store: a bar and the free space, an error as it came', () => {
    const lines = usageLines(ds, 40);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^usb1 \[#+\.+\]  30% 700 GiB free$/);
    expect(lines[0]).toHaveLength(40);
    expect(lines[1]).toMatch(/^nas  \[#+\.+\]  25% 3\.0 GiB free$/);
    expect(lines[2]).toBe('gone error: ENOENT');
  });

  it('uses two lines each when the rows allow, drops the bar when narrow', () => {
    const two = usageLines(ds.slice(0, 1), 30, 2);
    expect(two).toEqual(['usb1 [#####.............]  30%', ' used 300 GiB  free 700 GiB']);
    expect(two[0]).toHaveLength(30);
    expect(usageLines(ds.slice(0, 1), 20, 2)[1]).toBe(' 700 GiB free');
    expect(usageLines(ds.slice(0, 1), 22)).toEqual(['usb1  30% 700 GiB free']);
    expect(usageLines([], 30)).toEqual(['no datastores']);
  });

  it('an S3 datastore has no bar (a bucket has no size): what its versions store', () => {
    expect(usageLines([{ name: 'offsite', kind: 's3', used: 3 * GiB }], 40, 2)).toEqual(['offsite S3, 3.0 GiB stored']);
  });
});

describe('layout', () => {
  const overlaps = (a: Rect, b: Rect): boolean =>
    a.left < b.left + b.width && b.left < a.left + a.width && a.top < b.top + b.height && b.top < a.top + a.height;
  const boxes = (l: ReturnType<typeof layout>): Rect[] => [l.chart, l.gauge, l.usage, l.table, l.log].filter((r): r is Rect => r !== undefined);

  it('fills 80x24 with every widget, nothing overlapping', () => {
    const l = layout(80, 24, 3);
    expect(l.chart).toEqual({ top: 0, left: 0, width: 48, height: 10 });
    expect(l.gauge).toEqual({ top: 0, left: 48, width: 32, height: 6 });
    expect(l.usage).toEqual({ top: 6, left: 48, width: 32, height: 4 });
    expect(l.table).toEqual({ top: 10, left: 0, width: 80, height: 6 });
    expect(l.log).toEqual({ top: 16, left: 0, width: 80, height: 8 });
    const all = boxes(l);
    for (const a of all) for (const b of all) if (a !== b) expect(overlaps(a, b)).toBe(false);
  });

  it('a tall terminal gives the guest table a box of its own above the rotation table', () => {
    expect(layout(80, 24, 3, 5).guests).toBeUndefined();
    const tall = layout(100, 40, 3, 5);
    expect(tall.guests).toEqual({ top: 14, left: 0, width: 100, height: 8 });
    expect(tall.table?.top).toBe(22);
    const all = boxes(tall).concat(tall.guests as Rect);
    for (const a of all) for (const b of all) if (a !== b) expect(overlaps(a, b)).toBe(false);
    expect(Math.max(...all.map((b) => b.top + b.height))).toBe(40);
    expect(layout(100, 40, 3, 40).guests?.height).toBe(8); // a third of the 26 lines below the top row
  });

  it('degrades in small terminals: fewer rows, then no chart, then no table; the log keeps 3 lines', () => {
    const big = layout(80, 24, 40);
    expect(big.table?.height).toBe(7);
    const small = layout(60, 16, 3);
    expect(small.chart).toBeUndefined();
    expect(small.gauge).toEqual({ top: 0, left: 0, width: 36, height: 6 });
    expect(small.usage).toEqual({ top: 0, left: 36, width: 24, height: 6 });
    expect(small.table?.height).toBe(5);
    const tiny = layout(40, 10);
    expect(tiny.table).toBeUndefined();
    expect(tiny.usage).toBeUndefined();
    expect(tiny.log.height).toBeGreaterThanOrEqual(3);
    for (const [w, h] of [
      [80, 24],
      [60, 16],
      [40, 12],
      [120, 50],
      [20, 9],
    ] as const) {
      const l = layout(w, h);
      expect(Math.max(...boxes(l).map((b) => b.top + b.height))).toBe(h);
      expect(Math.max(...boxes(l).map((b) => b.left + b.width))).toBe(w);
    }
  });
});

describe('the guest table (GET /api/v1/overview)', () => {
  const guests = [
    { id: '104', name: 'scratch', lastBackup: null, flags: ['not-backed-up'] },
    { id: '101', name: 'web', lastBackup: { time: '2025-02-26T02:03:00Z', result: 'ok', downtimeMs: 42_000 }, flags: [] },
    { id: '102', name: 'database-server', lastBackup: { time: '2025-02-27T02:05:00Z', result: 'failed', downtimeMs: null }, flags: ['failed', 'overdue'] },
  ];

  it('one row per guest by id: last result, time, downtime, flags in words', () => {
    const rows = guestRows(guests);
    expect(rows.map((r) => [r.guest, r.result, r.downtime, r.flags, r.flagged])).toEqual([
      ['101', 'ok', '42s', '', false],
      ['102', 'FAILED', '-', 'FAILED, overdue', true],
      ['104', 'never', '-', 'NOT BACKED UP', true],
    ]);
    expect(rows[0]?.last).toMatch(/^25-02-26 \d\d:03$/);
    expect(rows[2]?.last).toBeUndefined();
  });

  it('fits the width: the flags take the rest; narrow tables drop Name, then Down, then Time', () => {
    const rows = guestRows(guests);
    const wide = guestTable(rows, 78);
    expect(wide.headers).toEqual(['Guest', 'Name', 'Last', 'Time', 'Down', 'Flags']);
    expect(wide.widths.reduce((a, w) => a + w + 2, 0) - 2).toBe(78); // two spaces between cells
    expect(wide.data[1]).toEqual(['102', 'database-s', 'FAILED', expect.stringMatching(/^25-02-27/), '-', 'FAILED, overdue']);
    expect(guestTable(rows, 50).headers).toEqual(['Guest', 'Last', 'Time', 'Down', 'Flags']);
    expect(guestTable(rows, 40).headers).toEqual(['Guest', 'Last', 'Time', 'Flags']);
    expect(guestTable(rows, 24).headers).toEqual(['Guest', 'Last', 'Flags']);
    expect(guestTable(rows, 24).data[2]).toEqual(['104', 'never', 'NOT BACK']);
  });
});

describe('formats', () => {
  it('short sizes, durations, times, labels', () => {
    expect([shortBytes(512), shortBytes(3.4 * MiB), shortBytes(700 * GiB), shortBytes(1023.9 * GiB)]).toEqual(['512 B', '3.4 MiB', '700 GiB', '1024 GiB']);
    expect([shortDuration(42), shortDuration(185), shortDuration(3720), shortDuration(2 * 86400 + 3 * 3600), shortDuration(undefined)]).toEqual([
      '42s',
      '3m05s',
      '1h02m',
      '2d3h',
      '-',
    ]);
    expect(toDate('2025-02-24T02:00:00Z')?.toISOString()).toBe('2025-02-24T02:00:00.000Z');
    expect(toDate(1_700_000_000)?.getTime()).toBe(1_700_000_000_000);
    expect(toDate('nonsense')).toBeUndefined();
    expect(fitLabel(' rotation  pve1 ', 40)).toBe(' rotation  pve1 ');
    expect(fitLabel(' rotation  pve1  coldvault 0.1.0 ', 12)).toBe(' rotation~ ');
  });
});
