/**
 * The calendar every schedule form compiles to: which wall-clock seconds (local date and time, no
 * time zone) match. Calendar events, cron expressions and weekdays + HH:MM all become one of these,
 * so one expansion (next-run.ts) finds the runs of each. Wall-clock times are handled as millisecond
 * numbers whose UTC fields are the local fields (`Date.UTC(year, month - 1, day, hour, minute, second)`).
 */

export interface Calendar {
  /** undefined: every year */
  readonly years: ReadonlySet<number> | undefined;
  /** 1-12 */
  readonly months: ReadonlySet<number>;
  /** day of the month, 1-31 */
  readonly days: ReadonlySet<number>;
  /** 0-6, 0 = Sunday */
  readonly weekdays: ReadonlySet<number>;
  /** `both`: day of the month and weekday must match; `either` (cron, both restricted): one of them */
  readonly dayRule: 'both' | 'either';
  /** sorted ascending */
  readonly hours: readonly number[];
  readonly minutes: readonly number[];
  readonly seconds: readonly number[];
}

/** A parsed schedule: its text, its form and its calendar; `timeZone` 'UTC' for a calendar event ending in UTC. */
export interface Schedule {
  readonly text: string;
  readonly form: 'calendar-event' | 'cron' | 'weekly';
  readonly calendar: Calendar;
  readonly timeZone?: 'UTC';
}

export const DAY_MS = 86_400_000;

/** What is wrong with a part of a schedule's text; parseSchedule names the whole text around it. */
export class ScheduleProblem extends Error {}

/** A number field's name and bounds, for parsing and for messages. */
export interface FieldRange {
  readonly name: string;
  readonly min: number;
  readonly max: number;
}

/** `value` as an integer of the field's range, else a problem naming the field. */
export function inRange(value: number, field: FieldRange, part: string): number {
  if (!Number.isInteger(value) || value < field.min || value > field.max)
    throw new ScheduleProblem(`${field.name} ${value} in '${part}' is out of range (${field.min}-${field.max})`);
  return value;
}

/** lo, lo + step, ... up to hi. */
export function stepRange(lo: number, hi: number, step = 1): number[] {
  const out: number[] = [];
  for (let v = lo; v <= hi; v += step) out.push(v);
  return out;
}

export function sorted(values: Iterable<number>): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}

/** Every value of a field, lo to hi. */
export function everyValue(lo: number, hi: number): Set<number> {
  return new Set(stepRange(lo, hi));
}

/** Whether the wall-clock day (its UTC fields) is one of the calendar's days, year and month aside. */
export function dayMatches(cal: Calendar, day: Date): boolean {
  const dayOk = cal.days.has(day.getUTCDate());
  const weekdayOk = cal.weekdays.has(day.getUTCDay());
  return cal.dayRule === 'both' ? dayOk && weekdayOk : dayOk || weekdayOk;
}

/** The first second of the day (0-86399) at or after `from` whose hour, minute and second match. */
export function timeAtOrAfter(cal: Calendar, from: number): number | undefined {
  const h0 = Math.floor(from / 3600);
  const m0 = Math.floor((from % 3600) / 60);
  const s0 = from % 60;
  for (const h of cal.hours) {
    if (h < h0) continue;
    for (const m of cal.minutes) {
      if (h === h0 && m < m0) continue;
      const s = cal.seconds.find((x) => h > h0 || m > m0 || x >= s0);
      if (s !== undefined) return h * 3600 + m * 60 + s;
    }
  }
  return undefined;
}
