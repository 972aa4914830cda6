/**
 * Weeks of backup history for the overview tests, made by the REAL CLI on past days: every command
 * runs under test/helpers/shifted-clock.mjs (TEST ONLY: the process's clock starts at the given past
 * time), so versions, job runs and their tasks carry those days' times, as if the node had run them.
 *
 * The plan, day by day (`days` days, the last one today, each at 90 minutes before now, local time;
 * in the first 90 minutes after midnight that is the day before, so the history starts a day earlier
 * and has `days + 1` days up to today):
 *  - job `nightly` (daily, guests 101 and 102) runs every day; on the last day guest 102's disk is
 *    gone, so its backup fails (the run fails);
 *  - job `offsite` (daily, guest 103) runs every day but the last OVERDUE_DAYS: 103 is overdue;
 *  - guest 104 is in no job: backed up by hand (`coldvault backup`) on the first day and 10 days ago;
 *  - before each day, one 4 MiB region of every disk is rewritten (log-like text, new each day), so
 *    each version adds new chunks and the store grows day by day.
 * Both jobs are scheduled daily at now + 6 h: their last scheduled run was 18 h ago (no run is due
 * while the test runs, and the scheduler of a serve started now finds none to catch up).
 */
import { spawn } from 'node:child_process';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, imagePath, REPO, rewriteRegion, writeGuest, writeImage, type CliResult, type Lab } from './fixtures.js';

export const SHIFTED_CLOCK = join(REPO, 'test/helpers/shifted-clock.mjs');
export const OVERDUE_DAYS = 4;
export const GUESTS = { ok: '101', failed: '102', overdue: '103', uncovered: '104' } as const;

/** Runs the CLI with its clock starting at `at`. */
export function cliAt(at: Date, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', SHIFTED_CLOCK, CLI, ...args], {
      env: { ...process.env, CV_TEST_NOW: at.toISOString() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

async function must(at: Date, args: string[], expected = 0): Promise<void> {
  const r = await cliAt(at, args);
  if (r.code !== expected)
    throw new Error(`coldvault ${args.join(' ')} at ${at.toISOString()} exited ${r.code}, expected ${expected}:\n${r.stderr}${r.stdout}`);
}

/** `now` moved `days` calendar days back (local time: the same wall-clock hour across a DST change), minus `minutes`. */
export function daysBefore(now: Date, days: number, minutes = 0): Date {
  const d = new Date(now);
  d.setDate(d.getDate() - days);
  return new Date(d.getTime() - minutes * 60_000);
}

const hhmm = (d: Date): string => `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
const disk = (lab: Lab, id: string): string => imagePath(lab, id, `vm-${id}-disk-0.raw`);

/** Makes the history in the lab's datastore and the state dir of `configPath`; returns the days' run times, oldest first. */
export async function makeHistory(lab: Lab, configPath: string, now: Date, days = 21): Promise<Date[]> {
  const config = ['--config', configPath];
  for (const id of Object.values(GUESTS)) {
    writeGuest(lab, id, [{ key: 'scsi0', file: `vm-${id}-disk-0.raw` }]);
    writeImage(disk(lab, id), ['text', 'text'], Number(id));
  }
  const times = Array.from({ length: days }, (_, i) => daysBefore(now, days - 1 - i, 90));
  const first = times[0] as Date;
  const schedule = ['--days', 'mon,tue,wed,thu,fri,sat,sun', '--at', hhmm(new Date(now.getTime() + 6 * 3_600_000))];
  await must(first, ['job', 'add', 'nightly', '--store', lab.storeDir, '--vmid', `${GUESTS.ok},${GUESTS.failed}`, ...schedule, '--snapshot', 'off', ...config]);
  await must(first, ['job', 'add', 'offsite', '--store', lab.storeDir, '--vmid', GUESTS.overdue, ...schedule, '--snapshot', 'off', ...config]);
  for (const [i, at] of times.entries()) {
    const last = i === days - 1;
    for (const id of Object.values(GUESTS)) rewriteRegion(disk(lab, id), 1, 'text', 7000 + i * 10 + Number(id));
    if (last) renameSync(disk(lab, GUESTS.failed), `${disk(lab, GUESTS.failed)}.gone`);
    await must(at, ['job', 'run', 'nightly', ...config], last ? 1 : 0);
    if (i < days - OVERDUE_DAYS) await must(new Date(at.getTime() + 10 * 60_000), ['job', 'run', 'offsite', ...config]);
    if (i === 0 || i === days - 11)
      await must(new Date(at.getTime() + 20 * 60_000), ['backup', GUESTS.uncovered, ...lab.flags, '--snapshot', 'off', ...config]);
  }
  return times;
}

/** Local `YYYY-MM-DD` (the test process runs in the server's time zone). */
export const localDay = (d: Date): string => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;

/** Calendar days from `a` to `b` (YYYY-MM-DD), whatever the daylight-saving changes between. */
const dayDiff = (a: string, b: string): number => Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);

/**
 * The test's own forecast, written apart from the product's (jobs/overview/forecast.ts) from what the
 * README says: stored bytes per day (cumulative, every day from the oldest version's to today), a
 * least-squares line through the last 30 days (at least 7), the first whole day on which the line
 * reaches today's bytes plus the free space; null when the slope is not positive.
 */
export function expectedForecast(
  versions: Array<{ time: string; storedBytes: number }>,
  freeBytes: number,
  now: Date,
): { days: number; dayList: string[]; fullOn: string | null } {
  const byDay = new Map<string, number>();
  for (const v of versions) byDay.set(localDay(new Date(v.time)), (byDay.get(localDay(new Date(v.time))) ?? 0) + v.storedBytes);
  const first = [...byDay.keys()].sort()[0] as string;
  const today = localDay(now);
  const ys: number[] = [];
  const dayList: string[] = [];
  let total = 0;
  for (let i = 0; i <= dayDiff(first, today); i++) {
    const day = new Date(Date.parse(`${first}T12:00:00Z`) + i * 86_400_000).toISOString().slice(0, 10);
    total += byDay.get(day) ?? 0;
    ys.push(total);
    dayList.push(day);
  }
  const days = ys.length;
  const window = ys.slice(-30);
  const n = window.length;
  if (n < 7) return { days, dayList, fullOn: null };
  const xs = window.map((_, i) => i); // the last point is x = n - 1, today
  const sx = xs.reduce((a, b) => a + b, 0);
  const sy = window.reduce((a, b) => a + b, 0);
  const sxy = xs.reduce((a, x, i) => a + x * (window[i] as number), 0);
  const sxx = xs.reduce((a, x) => a + x * x, 0);
  const slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  const intercept = (sy - slope * sx) / n;
  if (!(slope > 0)) return { days, dayList, fullOn: null };
  const capacity = (window[n - 1] as number) + freeBytes;
  const ahead = Math.max(0, Math.ceil((capacity - intercept) / slope - (n - 1)));
  const full = new Date(Date.parse(`${today}T12:00:00Z`) + ahead * 86_400_000).toISOString().slice(0, 10);
  return { days, dayList, fullOn: full };
}
