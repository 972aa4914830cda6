/**
 * The runs of a schedule in a time zone (the node's by default). A run is the instant a matching
 * wall-clock time first comes, with two rules where the clocks change:
 * - a wall-clock time that comes twice (the clocks go back) runs at its first coming only, as a
 *   waiting systemd timer does;
 * - matching wall-clock times that never come (the clocks go forward) run once, at the instant the
 *   clocks jump (03:00 after 01:59:59), as cron(8) on Debian describes; systemd skips them.
 * The runs do not depend on the instant asked from (systemd-analyze, asked from inside the second
 * coming of an hour, offers the rest of it).
 * `nextRun` finds the first run after an instant; `lastRunBefore` the latest one in a window.
 */
import { type Calendar, DAY_MS, dayMatches, type Schedule, timeAtOrAfter } from './calendar.js';
import { gapEnd, instantsAt, wallOf, type Zone, zoneOf } from './zone.js';

/** How far ahead a calendar is searched (a 29 February on a given weekday recurs within 28 years). */
const SEARCH_YEARS = 400;

/** The first run strictly after `after`, in zone `tz` (default: the node's); undefined if none comes. */
export function nextRun(schedule: Schedule, after: Date, tz?: string): Date | undefined {
  const zone = zoneOf(schedule.timeZone ?? tz);
  const t = nextInstant(schedule.calendar, zone, after.getTime());
  return t === undefined ? undefined : new Date(t);
}

/** The latest run in [notBefore, at], in zone `tz` (default: the node's). */
export function lastRunBefore(schedule: Schedule, at: Date, notBefore: Date, tz?: string): Date | undefined {
  const zone = zoneOf(schedule.timeZone ?? tz);
  const end = at.getTime();
  // look back over growing windows: a dense schedule is answered from the last hour
  for (const span of [3_600_000, DAY_MS, 32 * DAY_MS, 367 * DAY_MS, Number.POSITIVE_INFINITY]) {
    const from = Math.max(notBefore.getTime(), end - span);
    let last: number | undefined;
    for (let t = nextInstant(schedule.calendar, zone, from - 1); t !== undefined && t <= end; t = nextInstant(schedule.calendar, zone, t)) last = t;
    if (last !== undefined) return new Date(last);
    if (from === notBefore.getTime()) return undefined;
  }
  return undefined;
}

function nextInstant(cal: Calendar, zone: Zone, after: number): number | undefined {
  let from = Math.floor(wallOf(zone, after) / 1000) * 1000 + 1000;
  for (;;) {
    const wall = nextWallTime(cal, from);
    if (wall === undefined) return undefined;
    const [first] = instantsAt(zone, wall);
    const run = first ?? gapEnd(zone, wall);
    if (run > after) return run;
    from = wall + 1000; // the second coming of a wall-clock time we are already past
  }
}

/** The first wall-clock second at or after `from` that the calendar matches. */
function nextWallTime(cal: Calendar, from: number): number | undefined {
  let day = Math.floor(from / DAY_MS) * DAY_MS;
  let second = (from - day) / 1000;
  const lastYear = new Date(day).getUTCFullYear() + SEARCH_YEARS;
  for (;;) {
    const date = new Date(day);
    const year = date.getUTCFullYear();
    const month = date.getUTCMonth() + 1;
    if (year > lastYear) return undefined;
    if (cal.years && !cal.years.has(year)) {
      const next = nextYear(cal.years, year, lastYear);
      if (next === undefined) return undefined;
      [day, second] = [Date.UTC(next, 0, 1), 0];
    } else if (!cal.months.has(month)) {
      [day, second] = [Date.UTC(year, month, 1), 0];
    } else {
      const time = dayMatches(cal, date) ? timeAtOrAfter(cal, second) : undefined;
      if (time !== undefined) return day + time * 1000;
      [day, second] = [day + DAY_MS, 0];
    }
  }
}

function nextYear(years: ReadonlySet<number>, year: number, lastYear: number): number | undefined {
  for (let y = year + 1; y <= lastYear; y++) if (years.has(y)) return y;
  return undefined;
}
