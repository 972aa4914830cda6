/**
 * Cron expressions and weekdays + HH:MM over a whole year in Europe/Zurich against a reference that
 * shares no code with the implementation: a brute-force matcher that reads the cron text per value
 * and walks the year minute by minute on the clock of this process (TZ set below), applying the
 * documented rule where the clocks change: a wall-clock minute seen a second time is no run; when
 * the clocks jump forward, the first minute after the jump is a run if a skipped minute matches.
 * (systemd-analyze cannot read cron.) The implementation is asked both in the named zone (through
 * Intl) and in the process's own zone (through Date). Then fast-check: for random cron expressions and
 * instants, the next run is later, is a run of the reference, and no run of it lies in between.
 */
process.env.TZ = 'Europe/Zurich'; // this process's local time: the reference's clock and the default zone

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lastRunBefore, nextRun, parseSchedule, weeklySpec, type Schedule } from '../../src/jobs/schedule/index.js';
import { iso, newYear, ZONE } from './helpers-schedule.js';

const MINUTE = 60_000;
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** One cron field as a test of a value: each comma part is a range with a step, read from the text. */
function fieldTest(text: string, lo: number, hi: number, names: string[] = [], firstName = 0): (v: number) => boolean {
  const num = (x: string): number => (names.includes(x.toLowerCase()) ? names.indexOf(x.toLowerCase()) + firstName : Number(x));
  const tests = text.split(',').map((part) => {
    const [range = '', stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    const [a, b] = range === '*' ? [lo, hi] : range.includes('-') ? range.split('-').map(num) : [num(range), stepText === undefined ? num(range) : hi];
    return (v: number) => v >= (a as number) && v <= (b as number) && (v - (a as number)) % step === 0;
  });
  return (v) => tests.some((t) => t(v));
}

interface Wall {
  minute: number;
  hour: number;
  day: number;
  month: number;
  weekday: number;
}

/** Cron's rule: both day fields must match, or either one when both are restricted. */
function cronMatcher(expr: string): (w: Wall) => boolean {
  const [mi, ho, dom, mon, dow] = expr.split(/\s+/) as [string, string, string, string, string];
  const minute = fieldTest(mi, 0, 59);
  const hour = fieldTest(ho, 0, 23);
  const day = fieldTest(dom, 1, 31);
  const month = fieldTest(mon, 1, 12, MONTH_NAMES, 1);
  const weekdayField = fieldTest(dow, 0, 7, DAY_NAMES);
  const weekday = (wd: number): boolean => weekdayField(wd) || (wd === 0 && weekdayField(7));
  const either = dom !== '*' && dow !== '*';
  return (w) => minute(w.minute) && hour(w.hour) && month(w.month) && (either ? day(w.day) || weekday(w.weekday) : day(w.day) && weekday(w.weekday));
}

/** The wall-clock minute of instant `t` on this process's clock; `key` numbers it (its fields as UTC). */
function wallOf(t: number): Wall & { key: number } {
  const d = new Date(t);
  return fieldsOf(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes()));
}

function fieldsOf(key: number): Wall & { key: number } {
  const d = new Date(key);
  return { minute: d.getUTCMinutes(), hour: d.getUTCHours(), day: d.getUTCDate(), month: d.getUTCMonth() + 1, weekday: d.getUTCDay(), key };
}

/** The reference's runs in [from, to): every minute of real time, read on this process's clock. */
function referenceRuns(matches: (w: Wall) => boolean, from: Date, to: Date): Date[] {
  const out: Date[] = [];
  let latest = Number.NEGATIVE_INFINITY; // the latest wall-clock minute seen
  for (let t = from.getTime(); t < to.getTime(); t += MINUTE) {
    const wall = wallOf(t);
    let run = wall.key > latest && matches(wall);
    for (let skipped = latest + MINUTE; !run && latest > Number.NEGATIVE_INFINITY && skipped < wall.key; skipped += MINUTE) {
      run = matches(fieldsOf(skipped)); // a minute the clocks jumped over
    }
    if (run) out.push(new Date(t));
    latest = Math.max(latest, wall.key);
  }
  return out;
}

function implementationRuns(schedule: Schedule, from: Date, to: Date, tz?: string): Date[] {
  const out: Date[] = [];
  for (let t = nextRun(schedule, new Date(from.getTime() - 1), tz); t && t < to; t = nextRun(schedule, t, tz)) out.push(t);
  return out;
}

const CRONS = [
  '* * * * *',
  '*/15 2-3 * * mon-fri',
  '30 2 * * *',
  '* 2 28 3 *', // every minute of the hour the clocks skip in 2027: one run, at the jump
  '* 2 31 10 *', // every minute of the hour that comes twice: its first coming only
  '15 1-3 * 3,10 0',
  '0 */4 1,15 * 5', // both day fields restricted: either matches
  '5 4 31 * *',
  '0 0 29 2 *',
  '0 12 * jan-mar,oct sun',
  '59 23 * * 7',
  '*/7 * * * *',
  '0,30 0-6/2 */3 * *',
  '45 2 * * 0', // Sundays at 02:45, both change nights are Sundays
];

describe('cron over a year in Europe/Zurich, against a brute-force matcher', () => {
  it('the process runs in Europe/Zurich (the reference reads its clock)', () => {
    expect(new Date('2027-07-01T12:00:00Z').getHours()).toBe(14);
    expect(new Date('2027-01-01T12:00:00Z').getHours()).toBe(13);
  });

  it.each(CRONS)("'%s'", (expr) => {
    const [from, to] = [newYear(2027), newYear(2028)];
    const expected = referenceRuns(cronMatcher(expr), from, to).map(iso);
    const schedule = parseSchedule(expr);
    expect(schedule.form).toBe('cron');
    expect(implementationRuns(schedule, from, to, ZONE).map(iso)).toEqual(expected);
    expect(implementationRuns(schedule, from, to).map(iso)).toEqual(expected); // the process's own zone
  });

  it('runs a minute the clocks skip once, at the jump, and a minute that comes twice at its first coming', () => {
    const [from, to] = [newYear(2027), newYear(2028)];
    for (const [expr, expected] of [
      ['* 2 28 3 *', ['2027-03-28T01:00:00.000Z']], // 03:00 summer time
      ['30 2 28 3 *', ['2027-03-28T01:00:00.000Z']],
      ['30 2 31 10 *', ['2027-10-31T00:30:00.000Z']], // 02:30 summer time, not 02:30 winter time
    ] as const) {
      expect(referenceRuns(cronMatcher(expr), from, to).map(iso)).toEqual(expected);
      expect(implementationRuns(parseSchedule(expr), from, to, ZONE).map(iso)).toEqual(expected);
    }
    const repeated = implementationRuns(parseSchedule('* 2 31 10 *'), from, to, ZONE);
    expect([repeated.length, iso(repeated[0] as Date), iso(repeated[59] as Date)]).toEqual([60, '2027-10-31T00:00:00.000Z', '2027-10-31T00:59:00.000Z']);
  });

  it("'0 0 29 2 *' in the leap year 2028", () => {
    const [from, to] = [newYear(2028), newYear(2029)];
    const expected = referenceRuns(cronMatcher('0 0 29 2 *'), from, to).map(iso);
    expect(expected).toEqual(['2028-02-28T23:00:00.000Z']);
    expect(implementationRuns(parseSchedule('0 0 29 2 *'), from, to, ZONE).map(iso)).toEqual(expected);
  });

  it('weekdays + HH:MM: the same runs as the cron expression of those days and that time', () => {
    const [from, to] = [newYear(2027), newYear(2028)];
    for (const [days, at, cron] of [
      [['sun'], '02:30', '30 2 * * 0'],
      [['mon', 'wed', 'fri', 'sat', 'sun'], '02:00', '0 2 * * 1,3,5,6,0'],
      [['sat'], '23:59', '59 23 * * 6'],
    ] as const) {
      const expected = referenceRuns(cronMatcher(cron), from, to).map(iso);
      expect(implementationRuns(weeklySpec(days, at), from, to, ZONE).map(iso)).toEqual(expected);
    }
  });
});

const cronField = (lo: number, hi: number): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constant('*'),
    fc.integer({ min: 1, max: Math.ceil((hi - lo) / 2) }).map((s) => `*/${s}`),
    fc
      .array(
        fc.oneof(
          fc.integer({ min: lo, max: hi }).map(String),
          fc
            .tuple(fc.integer({ min: lo, max: hi }), fc.integer({ min: lo, max: hi }), fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }))
            .map(([a, b, s]) => `${Math.min(a, b)}-${Math.max(a, b)}${s ? `/${s}` : ''}`),
        ),
        { minLength: 1, maxLength: 3 },
      )
      .map((parts) => parts.join(',')),
  );
/** Runs at least every month or so: months are every month, a day of the month is one every month has. */
const cron = fc
  .tuple(cronField(0, 59), cronField(0, 23), fc.oneof(fc.constant('*'), cronField(1, 28)), cronField(0, 7))
  .map(([mi, ho, dom, dow]) => `${mi} ${ho} ${dom} * ${dow}`);
/** Instants in 2027 (17 s past a minute), often within hours of a change of the clocks. */
const CHANGES = [Date.parse('2027-03-28T01:00:00Z'), Date.parse('2027-10-31T01:00:00Z')];
const instant = fc
  .oneof(
    fc.integer({ min: newYear(2027).getTime() / MINUTE, max: newYear(2028).getTime() / MINUTE }),
    fc.tuple(fc.constantFrom(...CHANGES), fc.integer({ min: -180, max: 180 })).map(([t, m]) => t / MINUTE + m),
  )
  .map((m) => new Date(m * MINUTE + 17_000));

describe('random cron expressions (fast-check)', () => {
  it('the next run comes later, is a run of the reference, and no run of it lies in between; lastRunBefore finds it again', () => {
    fc.assert(
      fc.property(cron, instant, (expr, x) => {
        const schedule = parseSchedule(expr);
        const next = nextRun(schedule, x, ZONE);
        expect(next, expr).toBeDefined();
        const r = next as Date;
        expect(r.getTime()).toBeGreaterThan(x.getTime());
        // the reference from a day before x (so it knows the wall-clock minutes already seen) to the run
        const reference = referenceRuns(cronMatcher(expr), new Date(Math.floor(x.getTime() / MINUTE) * MINUTE - 86_400_000), new Date(r.getTime() + 1));
        expect(reference.filter((t) => t > x).map(iso), `${expr} after ${iso(x)}`).toEqual([iso(r)]);
        expect(lastRunBefore(schedule, r, new Date(x.getTime() + 1), ZONE)).toEqual(r);
        expect(lastRunBefore(schedule, new Date(r.getTime() - 1), new Date(x.getTime() + 1), ZONE)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});
