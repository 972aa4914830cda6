/**
 * The reference expansion of the schedule tests: `systemd-analyze calendar` (Debian package systemd;
 * it needs no running systemd for this), whose calendar events Proxmox's are a subset of. It prints
 * the next elapse times from a base time in the zone of its TZ, each also in UTC. Also the facts of the zone the tests run in: Europe/Zurich, whose clocks go forward from
 * 02:00 to 03:00 on the last Sunday of March and back from 03:00 to 02:00 on the last Sunday of
 * October (the EU rule: both at 01:00 UTC).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export const ZONE = 'Europe/Zurich';
const run = promisify(execFile);
const HOUR = 3_600_000;

/** The days the clocks go forward in ZONE (the last Sunday of March) and back (the last Sunday of October). */
const FORWARD_DAYS = ['2027-03-28', '2028-03-26', '2029-03-25'];
const BACK_DAYS = ['2027-10-31', '2028-10-29', '2029-10-28'];

/** Midnight of 1 January of `year` in ZONE (always winter time: UTC+1). */
export function newYear(year: number): Date {
  return new Date(Date.UTC(year, 0, 1) - HOUR);
}

/** Up to `iterations` runs of `expr` after `after` as systemd-analyze computes them in zone `tz`. */
export async function systemdRuns(expr: string, after: Date, iterations: number, tz = ZONE): Promise<Date[]> {
  const args = ['calendar', `--base-time=@${Math.floor(after.getTime() / 1000)}`, `--iterations=${Math.max(1, iterations)}`, expr];
  const { stdout } = await run('systemd-analyze', args, { env: { ...process.env, TZ: tz, LC_ALL: 'C', SYSTEMD_COLORS: '0' }, maxBuffer: 1 << 30 });
  if (/Next elapse: never/.test(stdout)) return [];
  // each run is a line in UTC: "(in UTC): ..." after the local one, or the run's own line when TZ is UTC
  const lines = /(?:\(in UTC\)|Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC/g;
  const runs = [...stdout.matchAll(lines)].map((m) => new Date(`${m[1]}T${m[2]}Z`));
  if (runs.length === 0) throw new Error(`systemd-analyze printed no run for '${expr}':\n${stdout}`);
  return runs;
}

/** Whether systemd-analyze is here (the tests say why they cannot run without it). */
export async function haveSystemdAnalyze(): Promise<boolean> {
  try {
    await run('systemd-analyze', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/**
 * The instants in (from, to] at which ZONE's clocks jump forward and the calendar of `expr` matches
 * a wall-clock time of the skipped hour: coldvault runs such a schedule once at the jump, systemd
 * skips it. Whether the skipped hour matches is asked of systemd-analyze in UTC, where that hour
 * exists. Events that end in UTC are not in ZONE: none.
 */
export async function forwardJumpRuns(expr: string, from: Date, to: Date): Promise<Date[]> {
  if (/\sUTC$/i.test(expr)) return [];
  const out: Date[] = [];
  for (const day of FORWARD_DAYS) {
    const jump = new Date(`${day}T01:00:00Z`);
    if (jump <= from || jump > to) continue;
    const skippedFrom = new Date(`${day}T02:00:00Z`); // 02:00 on the wall clock, read in UTC
    const [first] = await systemdRuns(expr, new Date(skippedFrom.getTime() - 1000), 1, 'UTC');
    if (first && first.getTime() < skippedFrom.getTime() + HOUR) out.push(jump);
  }
  return out;
}

/**
 * For an instant in the second coming of the hour the clocks go back over (02:00-02:59 winter time):
 * the last second of that hour. From there on systemd-analyze and coldvault agree; inside it,
 * systemd-analyze offers the rest of the second coming, which coldvault never runs.
 */
export function endOfSecondComing(t: Date): Date | undefined {
  for (const day of BACK_DAYS) {
    const start = Date.parse(`${day}T01:00:00Z`);
    if (t.getTime() >= start && t.getTime() < start + HOUR) return new Date(start + HOUR - 1000);
  }
  return undefined;
}

export const iso = (d: Date): string => d.toISOString();

/** Sorted, without doubles. */
export function union(...lists: Date[][]): Date[] {
  return [...new Set(lists.flat().map((d) => d.getTime()))].sort((a, b) => a - b).map((t) => new Date(t));
}
