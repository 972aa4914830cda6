/**
 * A datastore's usage over time, one point per day, from its catalog: the point of day D is the sum of
 * `storedBytes` (the bytes a version newly wrote to the store, after compression) of the versions still
 * in the store whose time is on or before D. So it is what today's versions took up as they were made:
 * a pruned version is in no point (the catalog no longer lists it), and the space garbage collection
 * gave back is not subtracted. The series runs from the day of the oldest version to `today`, every day
 * present (a day without a backup repeats the day before).
 */
import { dayKey, daysFrom } from './days.js';
import type { DayPoint } from './forecast.js';

export interface StoredVersion {
  /** ISO 8601 */
  time: string;
  storedBytes: number;
}

export function dailyUsage(versions: readonly StoredVersion[], today: Date): DayPoint[] {
  const perDay = new Map<string, number>();
  for (const v of versions) {
    const at = new Date(v.time);
    if (Number.isNaN(at.getTime())) continue;
    const day = dayKey(at);
    perDay.set(day, (perDay.get(day) ?? 0) + Math.max(0, v.storedBytes));
  }
  const first = [...perDay.keys()].sort()[0];
  if (first === undefined) return [];
  const last = dayKey(today);
  let total = 0;
  // versions dated after today (a clock set wrong) count on today
  const later = [...perDay].filter(([day]) => day > last).reduce((sum, [, bytes]) => sum + bytes, 0);
  return daysFrom(first < last ? first : last, last).map((day) => {
    total += perDay.get(day) ?? 0;
    return { day, bytes: day === last ? total + later : total };
  });
}
