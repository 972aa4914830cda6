/**
 * Proxmox VE calendar events (its admin guide's "Schedule Format", a subset of systemd.time(7)'s
 * calendar events, as Proxmox's proxmox-time implements them):
 *
 *   [WEEKDAYS] [[YEARS-]MONTHS-DAYS] [[HOURS:]MINUTES[:SECONDS]] [UTC]      or one special word
 *
 * in this order, separated by spaces, at least one part. WEEKDAYS: `mon`..`sun` (or full names, any
 * case) as a comma list of days and ranges `mon..fri` (a range may wrap: `fri..mon`). Every number
 * field is `*` (every value), a star with a step (`*` `/STEP`: from the field's smallest value on,
 * every STEP) or a comma list of `N`, `N..M`, `N/STEP` (N, N+STEP, ... to the field's end) and
 * `N..M/STEP`. A time without hours means minutes of every hour (`30/10`: at :30, :40 and :50 of
 * every hour); without a time, 00:00; without seconds, second 0. Weekdays, date and time must all
 * match (unlike cron's day rule). Special words: the table of Proxmox's documentation, in SPECIAL.
 */
import { type Calendar, everyValue, type FieldRange, inRange, ScheduleProblem, sorted, stepRange } from './calendar.js';

const YEAR: FieldRange = { name: 'year', min: 0, max: 2199 };
const MONTH: FieldRange = { name: 'month', min: 1, max: 12 };
const DAY: FieldRange = { name: 'day of the month', min: 1, max: 31 };
const HOUR: FieldRange = { name: 'hour', min: 0, max: 23 };
const MINUTE: FieldRange = { name: 'minute', min: 0, max: 59 };
const SECOND: FieldRange = { name: 'second', min: 0, max: 59 };

/** The special words, as Proxmox's documentation defines them. */
export const SPECIAL: Readonly<Record<string, string>> = {
  minutely: '*-*-* *:*:00',
  hourly: '*-*-* *:00:00',
  daily: '*-*-* 00:00:00',
  weekly: 'mon *-*-* 00:00:00',
  monthly: '*-*-01 00:00:00',
  yearly: '*-01-01 00:00:00',
  annually: '*-01-01 00:00:00',
  quarterly: '*-01,04,07,10-01 00:00:00',
  semiannually: '*-01,07-01 00:00:00',
  'semi-annually': '*-01,07-01 00:00:00',
};

/** Monday first, as Proxmox orders a range; the number is JavaScript's (0 = Sunday). */
const WEEKDAYS: ReadonlyArray<readonly [short: string, long: string, day: number]> = [
  ['mon', 'monday', 1],
  ['tue', 'tuesday', 2],
  ['wed', 'wednesday', 3],
  ['thu', 'thursday', 4],
  ['fri', 'friday', 5],
  ['sat', 'saturday', 6],
  ['sun', 'sunday', 0],
];

const ORDER = 'the order is [WEEKDAYS] [[YEARS-]MONTHS-DAYS] [[HOURS:]MINUTES[:SECONDS]]';

type Values = number[] | undefined;
type DateParts = { years: Set<number> | undefined; months: Set<number> | undefined; days: Set<number> | undefined };
type TimeParts = { hours: Values; minutes: Values; seconds: Values };
type Parts = { weekdays: Set<number> | undefined; date: DateParts | undefined; time: TimeParts | undefined };

/** The calendar of a calendar event and whether it is meant in UTC; throws ScheduleProblem. */
export function calendarOfEvent(text: string): { calendar: Calendar; utc: boolean } {
  const tokens = text.trim().split(/\s+/).filter(Boolean);
  const utc = tokens.length > 0 && tokens[tokens.length - 1]?.toUpperCase() === 'UTC';
  if (utc) tokens.pop();
  const special = tokens.length === 1 ? SPECIAL[(tokens[0] as string).toLowerCase()] : undefined;
  if (special) return { calendar: calendarOfEvent(special).calendar, utc };
  if (tokens.length === 0) throw new ScheduleProblem(`there is no weekday, date or time (${ORDER})`);
  const word = tokens.find((t) => SPECIAL[t.toLowerCase()] !== undefined);
  if (word) throw new ScheduleProblem(`'${word}' stands alone (it means ${SPECIAL[word.toLowerCase()]})`);
  return { calendar: calendarOfParts(partsOf(tokens)), utc };
}

/** The weekday, date and time parts, in this order, each there or not: a weekday starts with a letter, a date has a '-'. */
function partsOf(tokens: string[]): Parts {
  let i = 0;
  const weekdays = /^[a-z]/i.test(tokens[i] ?? '') ? weekdayList(tokens[i++] as string) : undefined;
  const date = tokens[i]?.includes('-') ? dateOf(tokens[i++] as string) : undefined;
  const time = tokens[i] !== undefined ? timeOf(tokens[i++] as string) : undefined;
  if (i < tokens.length) throw new ScheduleProblem(`'${tokens[i]}' is one part too many (${ORDER}; exactly five fields is cron)`);
  return { weekdays, date, time };
}

/** Every value where a part leaves a field open; without a time, 00:00:00. */
function calendarOfParts({ weekdays, date, time }: Parts): Calendar {
  const all = (f: FieldRange): number[] => stepRange(f.min, f.max);
  return {
    years: date?.years,
    months: date?.months ?? everyValue(1, 12),
    days: date?.days ?? everyValue(1, 31),
    weekdays: weekdays ?? everyValue(0, 6),
    dayRule: 'both',
    hours: time ? (time.hours ?? all(HOUR)) : [0],
    minutes: time ? (time.minutes ?? all(MINUTE)) : [0],
    seconds: time ? (time.seconds ?? all(SECOND)) : [0],
  };
}

function weekdayList(part: string): Set<number> {
  const out = new Set<number>();
  for (const item of part.split(',')) {
    const [from, to, more] = item.split('..');
    if (more !== undefined || from === undefined) throw new ScheduleProblem(`'${item}' is not a weekday or a range of weekdays (mon..fri)`);
    const start = weekdayIndex(from);
    const end = to === undefined ? start : weekdayIndex(to);
    for (let k = start; ; k = (k + 1) % 7) {
      out.add((WEEKDAYS[k] as (typeof WEEKDAYS)[number])[2]);
      if (k === end) break;
    }
  }
  return out;
}

/** The Monday-first index of a weekday's name. */
function weekdayIndex(name: string): number {
  const k = WEEKDAYS.findIndex(([short, long]) => name.toLowerCase() === short || name.toLowerCase() === long);
  if (k < 0) throw new ScheduleProblem(`'${name}' is not a weekday (mon, tue, wed, thu, fri, sat, sun)`);
  return k;
}

function dateOf(part: string): DateParts {
  const fields = part.split('-');
  if (fields.length < 2 || fields.length > 3) throw new ScheduleProblem(`'${part}' is not a date ([YEARS-]MONTHS-DAYS, e.g. *-*-01 or 2027-10-21)`);
  const [days, months, years] = fields.reverse() as [string, string, string | undefined];
  const set = (text: string, f: FieldRange): Set<number> | undefined => {
    const values = valueList(text, f);
    return values && new Set(values);
  };
  return { years: years === undefined ? undefined : set(years, YEAR), months: set(months, MONTH), days: set(days, DAY) };
}

function timeOf(part: string): TimeParts {
  const fields = part.split(':');
  if (fields.length > 3) throw new ScheduleProblem(`'${part}' is not a time ([HOURS:]MINUTES[:SECONDS], e.g. 02:30 or *:0/15)`);
  const [hours, minutes, seconds] = (fields.length === 1 ? [undefined, fields[0]] : fields) as [string | undefined, string, string | undefined];
  return {
    hours: hours === undefined ? undefined : valueList(hours, HOUR),
    minutes: valueList(minutes, MINUTE),
    seconds: seconds === undefined ? [0] : valueList(seconds, SECOND),
  };
}

/** The values a field's text names, sorted; undefined for `*` (every value). */
function valueList(text: string, f: FieldRange): Values {
  if (text === '*') return undefined;
  const star = /^\*\/(\d+)$/.exec(text);
  if (star) return stepRange(f.min, f.max, step(star[1] as string, f, text));
  const out: number[] = [];
  for (const item of text.split(',')) {
    const m = /^(\d+)(?:\.\.(\d+))?(?:\/(\d+))?$/.exec(item);
    if (!m) throw new ScheduleProblem(`'${item}' is not a ${f.name} (N, N..M, N/STEP, N..M/STEP or * as a comma list)`);
    const lo = inRange(Number(m[1]), f, item);
    const hi = m[2] !== undefined ? inRange(Number(m[2]), f, item) : m[3] !== undefined ? f.max : lo;
    if (lo > hi) throw new ScheduleProblem(`the ${f.name} range '${item}' runs backwards`);
    out.push(...stepRange(lo, hi, m[3] === undefined ? 1 : step(m[3], f, item)));
  }
  return sorted(out);
}

function step(text: string, f: FieldRange, item: string): number {
  const n = Number(text);
  if (n < 1) throw new ScheduleProblem(`the ${f.name} step in '${item}' must be 1 or more`);
  return n;
}
