/**
 * Calendar days as the overview counts them: the node's local days (the time zone of the process,
 * where schedules are read too), named `YYYY-MM-DD`. A day's number is its count of days since
 * 1970-01-01 as a calendar date, so consecutive days differ by exactly 1 whatever the daylight-saving
 * changes in between (a 23- or 25-hour day is still one day).
 */
const DAY_MS = 86_400_000;

const pad = (n: number): string => String(n).padStart(2, '0');

/** The local day of an instant: `YYYY-MM-DD`. */
export function dayKey(at: Date): string {
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
}

/** `YYYY-MM-DD` -> days since 1970-01-01 (calendar arithmetic, no time zone). */
export function dayNumber(key: string): number {
  const [y, m, d] = key.split('-').map(Number) as [number, number, number];
  return Math.round(Date.UTC(y, m - 1, d) / DAY_MS);
}

/** Days since 1970-01-01 -> `YYYY-MM-DD`. */
export function dayOfNumber(n: number): string {
  const d = new Date(n * DAY_MS);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** Every day from `first` to `last` (inclusive), in order; empty when `last` is before `first`. */
export function daysFrom(first: string, last: string): string[] {
  const out: string[] = [];
  for (let n = dayNumber(first); n <= dayNumber(last); n++) out.push(dayOfNumber(n));
  return out;
}
