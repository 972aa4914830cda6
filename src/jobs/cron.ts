/**
 * Schedules: a job runs on its weekdays at HH:MM local time, or by a cron expression
 * (`minute hour day-of-month month day-of-week`, with `*`, lists, ranges and steps; day-of-week 0-7,
 * 0 and 7 = Sunday, or mon..sun). `nextRun` / `lastRunBefore` find the matching minutes.
 */
import { ColdvaultError } from '../core/index.js';

export interface CronSpec {
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  anyDay: boolean;
  anyWeekday: boolean;
}

const NAMES: Record<string, number> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };

function field(text: string, min: number, max: number, what: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:\/(\d+))?$/i.exec(part);
    if (!m) throw new ColdvaultError('JOB_INVALID', `schedule: '${part}' is not a valid ${what} field`);
    const range = m[1] === '*' ? [min, max] : (m[1] ?? '').split('-').map((x) => num(x, what));
    const lo = range[0] ?? min;
    const end = range[1] ?? (m[2] ? max : lo);
    const step = m[2] ? Number(m[2]) : 1;
    if (lo < min || end > max || lo > end || step < 1)
      throw new ColdvaultError('JOB_INVALID', `schedule: '${part}' is out of range for ${what} (${min}-${max})`);
    for (let v = lo; v <= end; v += step) out.add(v);
  }
  return out;
}

function num(x: string, what: string): number {
  const n = NAMES[x.toLowerCase()] ?? Number(x);
  if (!Number.isInteger(n)) throw new ColdvaultError('JOB_INVALID', `schedule: '${x}' is not a number for ${what}`);
  return n;
}

export function parseCron(expr: string): CronSpec {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5) throw new ColdvaultError('JOB_INVALID', `schedule: '${expr}' needs 5 fields: minute hour day-of-month month day-of-week`);
  const [mi, ho, da, mo, wd] = parts as [string, string, string, string, string];
  const weekdays = field(wd, 0, 7, 'day-of-week');
  if (weekdays.has(7)) weekdays.add(0);
  return {
    minutes: field(mi, 0, 59, 'minute'),
    hours: field(ho, 0, 23, 'hour'),
    days: field(da, 1, 31, 'day-of-month'),
    months: field(mo, 1, 12, 'month'),
    weekdays,
    anyDay: da === '*',
    anyWeekday: wd === '*',
  };
}

/** Weekdays + HH:MM as a cron spec (weekday names as the form has them). */
export function weeklySpec(days: string[], at: string): CronSpec {
  const [h, m] = at.split(':').map(Number) as [number, number];
  const all = (n: number, from = 0): Set<number> => new Set(Array.from({ length: n }, (_, i) => i + from));
  return {
    minutes: new Set([m]),
    hours: new Set([h]),
    days: all(31, 1),
    months: all(12, 1),
    weekdays: new Set(days.map((d) => NAMES[d] as number)),
    anyDay: true,
    anyWeekday: false,
  };
}

export function matches(spec: CronSpec, t: Date): boolean {
  if (!spec.minutes.has(t.getMinutes()) || !spec.hours.has(t.getHours()) || !spec.months.has(t.getMonth() + 1)) return false;
  const dayOk = spec.days.has(t.getDate());
  const weekdayOk = spec.weekdays.has(t.getDay());
  if (spec.anyDay) return weekdayOk;
  if (spec.anyWeekday) return dayOk;
  return dayOk || weekdayOk; // cron: either restriction matches
}

const MINUTE = 60_000;

function floorMinute(t: Date): Date {
  const d = new Date(t);
  d.setSeconds(0, 0);
  return d;
}

/** The first matching minute strictly after `after`, within a year; undefined if none. */
export function nextRun(spec: CronSpec, after: Date): Date | undefined {
  let t = new Date(floorMinute(after).getTime() + MINUTE);
  for (let i = 0; i < 366 * 24 * 60; i++, t = new Date(t.getTime() + MINUTE)) {
    if (!spec.hours.has(t.getHours())) {
      t = new Date(t.getTime() + (59 - t.getMinutes()) * MINUTE);
      continue;
    }
    if (matches(spec, t)) return t;
  }
  return undefined;
}

/** The latest matching minute at or before `at`, not earlier than `notBefore`. */
export function lastRunBefore(spec: CronSpec, at: Date, notBefore: Date): Date | undefined {
  for (let t = floorMinute(at); t.getTime() >= notBefore.getTime(); t = new Date(t.getTime() - MINUTE)) {
    if (matches(spec, t)) return t;
  }
  return undefined;
}
