/**
 * schedule: when a job runs. A job's `schedule` is a Proxmox VE calendar event (`mon..fri 22:30`,
 * `sat 02:00`, `*-*-01 00:00`, `daily`: calendar-event.ts) or a 5-field cron expression (cron.ts);
 * without one, its weekdays + HH:MM. The rule that tells the two apart: a text of exactly five
 * space-separated fields is cron, anything else a calendar event (which has at most four: weekdays,
 * date, time, UTC). Every form compiles to one calendar of wall-clock times (calendar.ts), expanded
 * to runs in the node's local time zone, with one rule for daylight-saving changes (next-run.ts).
 * parseSchedule, nextRun and lastRunBefore are the entry points; a bad schedule is JOB_INVALID with
 * a message naming the part that is wrong.
 */
import { ColdvaultError } from '../../core/index.js';
import { type Schedule, ScheduleProblem } from './calendar.js';
import { calendarOfEvent } from './calendar-event.js';
import { calendarOfCron, calendarOfWeekdays } from './cron.js';
import { wallClockText, zoneOf } from './zone.js';

export type { Calendar, Schedule } from './calendar.js';
export { SPECIAL as SPECIAL_SCHEDULES } from './calendar-event.js';
export { lastRunBefore, nextRun } from './next-run.js';

/** A run's time as the node's (or zone `tz`'s) clock shows it, with the offset: `2027-03-29 02:30 +02:00`. */
export function runTimeText(run: Date, tz?: string): string {
  return wallClockText(run.getTime(), zoneOf(tz));
}

/** Whether a schedule's text is read as a cron expression (five fields) rather than a calendar event. */
export function isCronExpression(text: string): boolean {
  return text.trim().split(/\s+/).length === 5;
}

/** A job's `schedule`: a cron expression or a calendar event; throws JOB_INVALID naming what is wrong. */
export function parseSchedule(text: string): Schedule {
  return isCronExpression(text) ? parseCron(text) : parseCalendarEvent(text);
}

export function parseCalendarEvent(text: string): Schedule {
  const { calendar, utc } = explained(text, 'calendar event', () => calendarOfEvent(text));
  return utc ? { text, form: 'calendar-event', calendar, timeZone: 'UTC' } : { text, form: 'calendar-event', calendar };
}

export function parseCron(text: string): Schedule {
  return { text, form: 'cron', calendar: explained(text, 'cron expression', () => calendarOfCron(text)) };
}

/** A job's weekdays (mon..sun) at HH:MM; its text is the same as a calendar event (`mon,fri 22:30`). */
export function weeklySpec(days: readonly string[], at: string): Schedule {
  return { text: `${days.join(',')} ${at}`, form: 'weekly', calendar: calendarOfWeekdays(days, at) };
}

function explained<T>(text: string, form: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof ScheduleProblem)) throw err;
    throw new ColdvaultError('JOB_INVALID', `schedule '${text}' (a ${form}): ${err.message}`);
  }
}
