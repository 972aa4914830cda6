/**
 * Reading a schedule: exactly five fields is cron, anything else a calendar event; a special word
 * means what Proxmox's table spells out; a bad schedule is JOB_INVALID with a message that names the
 * part that is wrong (what the CLI prints, the API answers and the web form puts next to the field);
 * a job refuses a bad schedule; a run's time is shown on the node's clock with its offset.
 */
import { describe, expect, it } from 'vitest';
import { validateJob } from '../../src/jobs/index.js';
import { parseSchedule, runTimeText, SPECIAL_SCHEDULES } from '../../src/jobs/schedule/index.js';
import { ZONE } from './helpers-schedule.js';

describe('schedule forms', () => {
  it('reads exactly five fields as cron and anything else as a calendar event', () => {
    expect(parseSchedule('30 22 * * 1-5').form).toBe('cron');
    expect(parseSchedule(' 0  2 * *  sun ').form).toBe('cron');
    for (const event of ['mon..fri 22:30', 'sat 02:00', '*/4:00', 'daily', '*-*-01 00:00', '12,14,16,18,20,22:5', 'mon 2027-*-* 02:00 UTC'])
      expect(parseSchedule(event).form, event).toBe('calendar-event');
  });

  it('gives each special word the calendar Proxmox spells out for it', () => {
    expect(Object.keys(SPECIAL_SCHEDULES).sort()).toEqual(
      ['annually', 'daily', 'hourly', 'minutely', 'monthly', 'quarterly', 'semi-annually', 'semiannually', 'weekly', 'yearly'].sort(),
    );
    for (const [word, spelled] of Object.entries(SPECIAL_SCHEDULES)) {
      expect(parseSchedule(word).calendar, word).toEqual(parseSchedule(spelled).calendar);
    }
    expect(parseSchedule('weekly').calendar).toEqual(parseSchedule('mon').calendar);
  });

  it('reads weekday names in any case and in full, and a trailing UTC', () => {
    expect(parseSchedule('SAT 18:15').calendar).toEqual(parseSchedule('sat 18:15').calendar);
    expect(parseSchedule('Saturday 18:15').calendar).toEqual(parseSchedule('sat 18:15').calendar);
    expect(parseSchedule('Daily').calendar).toEqual(parseSchedule('00:00').calendar);
    expect(parseSchedule('fri..mon').calendar.weekdays).toEqual(new Set([5, 6, 0, 1]));
    expect(parseSchedule('mon 12:00 UTC').timeZone).toBe('UTC');
    expect(parseSchedule('mon 12:00').timeZone).toBeUndefined();
  });
});

describe('bad schedules', () => {
  const refused: Array<[string, RegExp]> = [
    ['mon..fry 02:00', /'fry' is not a weekday/],
    ['25:00', /hour 25 in '25' is out of range \(0-23\)/],
    ['12:60', /minute 60 in '60' is out of range \(0-59\)/],
    ['12:00:75', /second 75/],
    ['*-13-01', /month 13 in '13' is out of range \(1-12\)/],
    ['*-*-32', /day of the month 32/],
    ['*-*-0', /day of the month 0/],
    ['10..5:00', /the hour range '10..5' runs backwards/],
    ['*/0', /the minute step in '\*\/0' must be 1 or more/],
    ['mon,,fri', /'' is not a weekday/],
    ['daily 02:00', /'daily' stands alone \(it means \*-\*-\* 00:00:00\)/],
    ['02:00 mon', /'mon' is one part too many \(the order is \[WEEKDAYS\]/],
    ['30 22 * *', /'22' is one part too many.*five fields is cron/],
    ['1:2:3:4', /'1:2:3:4' is not a time/],
    ['*-*-*-*', /'\*-\*-\*-\*' is not a date/],
    ['12:x5', /'x5' is not a minute/],
    ['*-*-01 00:00 02:00', /one part too many/],
    ['UTC', /no weekday, date or time/],
    ['61 * * * *', /minute 61 in '61' is out of range \(0-59\)/],
    ['* * * * funday', /'funday' is not a number for day-of-week/],
    ['5-1 * * * *', /the minute range '5-1' runs backwards/],
  ];

  it.each(refused)("refuses '%s', naming what is wrong", (text, message) => {
    let error: unknown;
    try {
      parseSchedule(text);
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'JOB_INVALID' });
    expect((error as Error).message).toContain(`schedule '${text}'`);
    expect((error as Error).message).toMatch(message);
  });

  it('a job with a bad schedule is refused; one with a calendar event is kept as written', () => {
    const base = { id: 'j', store: '/s', all: true };
    expect(() => validateJob({ ...base, schedule: 'mon..fry 02:00' })).toThrow(/schedule 'mon..fry 02:00' \(a calendar event\): 'fry' is not a weekday/);
    expect(validateJob({ ...base, schedule: 'mon..fri 22:30' }).schedule).toBe('mon..fri 22:30');
  });
});

describe("a run's time on the node's clock", () => {
  it('is the wall-clock time with its offset, seconds only when set', () => {
    expect(runTimeText(new Date('2027-03-28T01:00:00Z'), ZONE)).toBe('2027-03-28 03:00 +02:00');
    expect(runTimeText(new Date('2027-12-24T17:30:15Z'), ZONE)).toBe('2027-12-24 18:30:15 +01:00');
    expect(runTimeText(new Date('2027-12-24T17:30:00Z'), 'America/St_Johns')).toBe('2027-12-24 14:00 -03:30');
  });
});
