/**
 * Cron expressions (`minute hour day-of-month month day-of-week`: `*`, lists, ranges `N-M` and steps
 * `/STEP`; day-of-week 0-7, 0 and 7 = Sunday, or sun..sat; month 1-12 or jan..dec) and the job's
 * weekdays + HH:MM, as calendars. As in cron, a day matches when both day fields match, except when
 * both are restricted (neither is `*`): then either one does.
 */
import { type Calendar, everyValue, type FieldRange, inRange, ScheduleProblem, sorted, stepRange } from './calendar.js';

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

const MINUTE: FieldRange = { name: 'minute', min: 0, max: 59 };
const HOUR: FieldRange = { name: 'hour', min: 0, max: 23 };
const DAY: FieldRange = { name: 'day-of-month', min: 1, max: 31 };
const MONTH: FieldRange = { name: 'month', min: 1, max: 12 };
const WEEKDAY: FieldRange = { name: 'day-of-week', min: 0, max: 7 };

/** The calendar of a 5-field cron expression; throws ScheduleProblem. */
export function calendarOfCron(expr: string): Calendar {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5) throw new ScheduleProblem('a cron expression needs 5 fields: minute hour day-of-month month day-of-week');
  const [mi, ho, da, mo, wd] = parts as [string, string, string, string, string];
  const weekdays = new Set([...field(wd, WEEKDAY, DAY_NAMES, 0)].map((d) => d % 7));
  return {
    years: undefined,
    months: new Set(field(mo, MONTH, MONTH_NAMES, 1)),
    days: new Set(field(da, DAY)),
    weekdays,
    dayRule: da !== '*' && wd !== '*' ? 'either' : 'both',
    hours: sorted(field(ho, HOUR)),
    minutes: sorted(field(mi, MINUTE)),
    seconds: [0],
  };
}

/** The job's weekdays (mon..sun) at HH:MM, every week. */
export function calendarOfWeekdays(days: readonly string[], at: string): Calendar {
  const [h, m] = at.split(':').map(Number) as [number, number];
  return {
    years: undefined,
    months: everyValue(1, 12),
    days: everyValue(1, 31),
    weekdays: new Set(days.map((d) => DAY_NAMES.indexOf(d))),
    dayRule: 'both',
    hours: [h],
    minutes: [m],
    seconds: [0],
  };
}

/** A comma list of `*`, `N`, `N-M`, each with an optional `/STEP`; names count from `firstName`. */
function field(text: string, f: FieldRange, names: string[] = [], firstName = 0): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:\/(\d+))?$/i.exec(part);
    if (!m) throw new ScheduleProblem(`'${part}' is not a valid ${f.name} field`);
    const bounds = m[1] === '*' ? [f.min, f.max] : (m[1] as string).split('-').map((x) => value(x, f, names, firstName, part));
    const lo = bounds[0] as number;
    const hi = bounds[1] ?? (m[2] ? f.max : lo);
    const step = m[2] ? Number(m[2]) : 1;
    if (lo > hi) throw new ScheduleProblem(`the ${f.name} range '${part}' runs backwards`);
    if (step < 1) throw new ScheduleProblem(`the ${f.name} step in '${part}' must be 1 or more`);
    out.push(...stepRange(lo, hi, step));
  }
  return out;
}

function value(x: string, f: FieldRange, names: string[], firstName: number, part: string): number {
  const named = names.indexOf(x.toLowerCase());
  const n = named >= 0 ? named + firstName : /^\d+$/.test(x) ? Number(x) : Number.NaN;
  if (Number.isNaN(n)) throw new ScheduleProblem(`'${x}' is not a number for ${f.name}`);
  return inRange(n, f, part);
}
