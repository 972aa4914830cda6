/**
 * Calendar events against a reference expansion, systemd-analyze (helpers-schedule.ts): every
 * example of Proxmox VE's "Schedule Format" documentation (its examples table and its special words),
 * the brief's examples and our own (ranges, steps, lists, wrapping weekday ranges, seconds, month
 * days 29-31, a leap year, UTC), each over a whole year in Europe/Zurich, so both daylight-saving
 * changes are crossed: the runs are identical, but for the one documented difference (a wall-clock
 * time the clocks skip runs once at the jump; systemd skips it), which the reference itself decides
 * (systemd-analyze in UTC, where that hour exists). Where Proxmox's syntax is not systemd's (a bare
 * minute, `*` with a step, a wrapping weekday range), the table gives the systemd text of the same
 * meaning, as Proxmox's documentation describes it. Then random events at random instants, one
 * next run each, against systemd-analyze (fast-check).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nextRun, parseSchedule } from '../../src/jobs/schedule/index.js';
import { endOfSecondComing, forwardJumpRuns, iso, newYear, systemdRuns, union, ZONE } from './helpers-schedule.js';

type Row = [proxmox: string, systemd: string, year?: number];

/** Proxmox VE's examples table (pve-docs calendar-events.adoc): schedule string and alternative. */
const PROXMOX_EXAMPLES: Row[] = [
  ['mon,tue,wed,thu,fri', 'mon,tue,wed,thu,fri'],
  ['mon..fri', 'mon..fri'],
  ['sat,sun', 'sat,sun'],
  ['sat..sun', 'sat..sun'],
  ['mon,wed,fri', 'mon,wed,fri'],
  ['12:05', '12:05'],
  ['*/5', '*:0/5'], // "every five minutes": a bare value is minutes
  ['0/5', '*:0/5'],
  ['mon..wed 30/10', 'mon..wed *:30/10'],
  ['mon,tue,wed 30/10', 'mon..wed *:30/10'],
  ['mon..fri 8..17,22:0/15', 'mon..fri 8..17,22:0/15'],
  ['fri 12..13:5/20', 'fri 12..13:5/20'],
  ['fri 12,13:5/20', 'fri 12,13:5/20'],
  ['12,14,16,18,20,22:5', '12,14,16,18,20,22:5'],
  ['12/2:5', '12/2:5'],
  ['*', '*:*'], // "every minute"
  ['*/1', '*:*'],
  ['*-05', '*-05'],
  ['Sat *-1..7 15:00', 'Sat *-1..7 15:00'],
  ['2015-10-21', '2015-10-21'], // in the past: no run
];

/** Its special words, which systemd knows by the same names. */
const SPECIAL_WORDS: Row[] = ['minutely', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'annually', 'quarterly', 'semiannually', 'semi-annually'].map(
  (w) => [w, w],
);

/** The issue's and the brief's examples, then our own. */
const OWN: Row[] = [
  ['02:00', '02:00'],
  ['mon..fri 02:30', 'mon..fri 02:30'],
  ['mon..fri 22:30', 'mon..fri 22:30'],
  ['sat 02:00', 'sat 02:00'],
  ['sat 18:15', 'sat 18:15'],
  ['*/4:00', '0/4:00'],
  ['*-*-01 00:00', '*-*-01 00:00'],
  ['*:0/15', '*:0/15'],
  ['02:*', '02:*'], // every minute of the hour that is skipped once and repeated once
  ['*-03,10-* 1..3:0/20', '*-03,10-* 1..3:0/20'],
  ['sun 01..03:*:0/30', 'sun 01..03:*:0/30'],
  ['fri..mon 04:00', 'fri,sat,sun,mon 04:00'], // a weekday range may wrap, as in Proxmox
  ['Monday..Wednesday 10:00', 'Monday..Wednesday 10:00'],
  ['8..17/2:00', '8..17/2:00'],
  ['*/20:15', '0,20:15'], // the same hours: systemd 252 loops on 0/20 on the night the clocks go forward (its bug)
  ['*-1/3-1 00:00', '*-1/3-1 00:00'],
  ['*-*-1/10 06:00', '*-*-1/10 06:00'],
  ['*-*-29,30,31 12:00', '*-*-29,30,31 12:00'],
  ['*-*-31 02:30', '*-*-31 02:30'],
  ['*-02-29 06:00', '*-02-29 06:00'], // none in 2027
  ['*-02-29 06:00', '*-02-29 06:00', 2028], // a leap year
  ['mon *-02-28..29 07:00', 'mon *-02-28..29 07:00', 2028],
  ['2027,2029-*-15 03:00', '2027,2029-*-15 03:00'],
  ['2027-06..08-* 04:05:06', '2027-06..08-* 04:05:06'],
  ['*-*-* 12:00:30', '*-*-* 12:00:30'],
  ['mon 12:00 UTC', 'mon 12:00 UTC'],
  ['*-*-* 02:30', '*-*-* 02:30'],
  ['*-*-* 02:30', '*-*-* 02:30', 2028],
];

const cache = new Map<string, Promise<Date[]>>();
function reference(expr: string, from: Date, iterations: number): Promise<Date[]> {
  const key = `${expr}|${from.getTime()}|${iterations}`;
  if (!cache.has(key)) cache.set(key, systemdRuns(expr, from, iterations));
  return cache.get(key) as Promise<Date[]>;
}

/** The runs of a Proxmox calendar event in (from, to), in ZONE. */
function ours(text: string, from: Date, to: Date): Date[] {
  const schedule = parseSchedule(text);
  const out: Date[] = [];
  for (let t = nextRun(schedule, from, ZONE); t && t < to; t = nextRun(schedule, t, ZONE)) out.push(t);
  return out;
}

async function expectSameYear([proxmox, systemd, year = 2027]: Row): Promise<void> {
  const from = new Date(newYear(year).getTime() - 1000); // 00:00:00 of 1 January is in the year
  const to = newYear(year + 1);
  const mine = ours(proxmox, from, to);
  // one more than ours: if systemd had more runs in the year, the extra one shows
  const theirs = (await reference(systemd, from, mine.length + 1)).filter((d) => d < to);
  const expected = union(theirs, await forwardJumpRuns(systemd, from, to));
  expect(mine.map(iso)).toEqual(expected.map(iso));
}

describe('calendar events over a year in Europe/Zurich, against systemd-analyze', () => {
  it.each(PROXMOX_EXAMPLES)("Proxmox's example '%s' runs as systemd's '%s'", (...row) => expectSameYear(row));
  it.each(SPECIAL_WORDS)("Proxmox's special word '%s' runs as systemd's '%s'", (...row) => expectSameYear(row));
  it.each(OWN)("'%s' runs as systemd's '%s' (year %s)", (...row) => expectSameYear(row));

  it('runs a job at 02:30 once on both nights the clocks change: at the jump, and at the first 02:30', () => {
    const runs = ours('02:30', newYear(2027), newYear(2028)).map(iso);
    expect(runs.filter((r) => r.startsWith('2027-03-28'))).toEqual(['2027-03-28T01:00:00.000Z']); // 03:00 summer time
    expect(runs.filter((r) => r.startsWith('2027-10-31') || r.startsWith('2027-10-30T'))).toEqual([
      '2027-10-30T00:30:00.000Z', // Saturday, summer time
      '2027-10-31T00:30:00.000Z', // Sunday: the first 02:30 (summer time), not the second
    ]);
    expect(runs).toHaveLength(365);
  });

  it('gives no run for a date in the past, and for a day no month has', () => {
    expect(nextRun(parseSchedule('2015-10-21'), newYear(2027), ZONE)).toBeUndefined();
    expect(nextRun(parseSchedule('*-02-30'), newYear(2027), ZONE)).toBeUndefined();
  });
});

/**
 * A number field's text in both syntaxes. Repetitions go to systemd as the list of their values:
 * systemd 252 carries a repetition that does not divide its field wrongly (after 23:56, `0/7` gives
 * 00:07, not 00:00), loops on some around the night the clocks go forward, and refuses one whose
 * first step leaves the field (9/4 as a month); the examples' own repetitions are tested above.
 * Seconds may be fractional in systemd, so `0..0` is no range of seconds there: also a list.
 */
function numberField(min: number, max: number, seconds = false): fc.Arbitrary<{ pve: string; sd: string }> {
  const value = fc.integer({ min, max });
  const step = fc.integer({ min: 1, max: Math.max(2, Math.ceil((max - min) / 2)) });
  const same = (text: string) => ({ pve: text, sd: text });
  const every = (a: number, b: number, s: number): string => {
    const values = [];
    for (let v = a; v <= b; v += s) values.push(v);
    return values.join(',');
  };
  const item = fc.oneof(
    value.map((v) => same(String(v))),
    fc.tuple(value, value).map(([a, b]) => {
      const [lo, hi] = [Math.min(a, b), Math.max(a, b)];
      return { pve: `${lo}..${hi}`, sd: seconds ? every(lo, hi, 1) : `${lo}..${hi}` };
    }),
    fc.tuple(value, step).map(([a, s]) => ({ pve: `${a}/${s}`, sd: every(a, max, s) })),
    fc.tuple(value, value, step).map(([a, b, s]) => ({ pve: `${Math.min(a, b)}..${Math.max(a, b)}/${s}`, sd: every(Math.min(a, b), Math.max(a, b), s) })),
  );
  return fc.oneof(
    fc.constant(same('*')),
    step.map((s) => ({ pve: `*/${s}`, sd: every(min, max, s) })),
    fc.array(item, { minLength: 1, maxLength: 3 }).map((items) => ({ pve: items.map((i) => i.pve).join(','), sd: items.map((i) => i.sd).join(',') })),
  );
}

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const weekdays = fc
  .array(
    fc.tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 6 })).map(([a, b]) => {
      const days = [];
      for (let k = a; ; k = (k + 1) % 7) {
        days.push(DAYS[k]);
        if (k === b) break;
      }
      return { pve: a === b ? (DAYS[a] as string) : `${DAYS[a]}..${DAYS[b]}`, sd: days.join(',') }; // systemd has no wrapping range
    }),
    { minLength: 1, maxLength: 2 },
  )
  .map((items) => ({ pve: items.map((i) => i.pve).join(','), sd: items.map((i) => i.sd).join(',') }));
const date = fc.tuple(numberField(1, 12), numberField(1, 31)).map(([m, d]) => ({ pve: `*-${m.pve}-${d.pve}`, sd: `*-${m.sd}-${d.sd}` }));
const time = fc.oneof(
  numberField(0, 59).map((m) => ({ pve: m.pve, sd: `*:${m.sd}` })), // a bare value is minutes
  fc
    .tuple(numberField(0, 23), numberField(0, 59), fc.option(numberField(0, 59, true), { nil: undefined }))
    .map(([h, m, s]) => ({ pve: `${h.pve}:${m.pve}${s ? `:${s.pve}` : ''}`, sd: `${h.sd}:${m.sd}${s ? `:${s.sd}` : ''}` })),
);
const event = fc
  .tuple(fc.option(weekdays, { nil: undefined }), fc.option(date, { nil: undefined }), fc.option(time, { nil: undefined }))
  .filter(([w, d, t]) => Boolean(w || d || t))
  .map((parts) => ({
    pve: parts.flatMap((p) => (p ? [p.pve] : [])).join(' '),
    sd: parts.flatMap((p) => (p ? [p.sd] : [])).join(' '),
  }));
/** Whole seconds in 2027 and 2028, often near a change of the clocks. */
const DST_CHANGES = ['2027-03-28T01:00:00Z', '2027-10-31T01:00:00Z', '2028-03-26T01:00:00Z', '2028-10-29T01:00:00Z'].map(Date.parse);
const instant = fc.oneof(
  fc.integer({ min: newYear(2027).getTime() / 1000, max: newYear(2029).getTime() / 1000 }).map((s) => new Date(s * 1000)),
  fc.tuple(fc.constantFrom(...DST_CHANGES), fc.integer({ min: -3 * 3600, max: 3 * 3600 })).map(([t, s]) => new Date(t + s * 1000)),
);

describe('random calendar events, against systemd-analyze', () => {
  it('the next run after a random instant is the one systemd-analyze names (but for the documented DST rule)', async () => {
    await fc.assert(
      fc.asyncProperty(event, instant, async (e, x) => {
        const mine = nextRun(parseSchedule(e.pve), x, ZONE);
        const base = endOfSecondComing(x) ?? x; // systemd would offer the rest of a second coming
        const [theirs] = await systemdRuns(e.sd, base, 1);
        const jumps = await forwardJumpRuns(e.sd, base, theirs ?? newYear(2030));
        const [expected] = union(theirs ? [theirs] : [], jumps);
        expect(mine && iso(mine), `'${e.pve}' (systemd '${e.sd}') after ${iso(x)}`).toEqual(expected && iso(expected));
      }),
      { numRuns: 100 },
    );
  });
});
