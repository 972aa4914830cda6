/**
 * Time zones for schedules: a zone answers its UTC offset at an instant; from that, an instant's
 * wall-clock time, and the instants a wall-clock time stands for: one, none (it falls into the hour
 * skipped when the clocks go forward) or two (it comes twice when they go back). The node's zone is
 * the process's (TZ), read through Date; a named IANA zone (for tests, and `UTC` events) through Intl.
 */
import { DAY_MS } from './calendar.js';

export interface Zone {
  /** milliseconds to add to an instant for its wall-clock time (UTC+2: 7_200_000) */
  offsetMs(instant: number): number;
}

const HOUR_MS = 3_600_000;
const LOCAL: Zone = { offsetMs: (t) => -new Date(t).getTimezoneOffset() * 60_000 };
const UTC: Zone = { offsetMs: () => 0 };
const named = new Map<string, Zone>();

/** The node's local zone without a name, else the IANA zone (a RangeError for an unknown name). */
export function zoneOf(name?: string): Zone {
  if (name === undefined) return LOCAL;
  if (name === 'UTC') return UTC;
  let zone = named.get(name);
  if (!zone) {
    zone = intlZone(name);
    named.set(name, zone);
  }
  return zone;
}

function intlZone(timeZone: string): Zone {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  const exact = (instant: number): number => {
    const f: Record<string, number> = {};
    for (const p of format.formatToParts(instant)) if (p.type !== 'literal') f[p.type] = Number(p.value);
    const wall = Date.UTC(f.year as number, (f.month as number) - 1, f.day, f.hour, f.minute, f.second);
    return wall - (instant - (((instant % 1000) + 1000) % 1000));
  };
  // Intl is slow: an hour whose first and last second have one offset keeps it throughout (zones
  // change their offset at most once within days), so it is asked once per hour
  const hours = new Map<number, number | null>();
  return {
    offsetMs(instant) {
      const hour = Math.floor(instant / HOUR_MS);
      let offset = hours.get(hour);
      if (offset === undefined) {
        const start = exact(hour * HOUR_MS);
        offset = start === exact(hour * HOUR_MS + HOUR_MS - 1000) ? start : null;
        if (hours.size > 100_000) hours.clear();
        hours.set(hour, offset);
      }
      return offset ?? exact(instant);
    },
  };
}

export function wallOf(zone: Zone, instant: number): number {
  return instant + zone.offsetMs(instant);
}

/** The instants at which the zone's clocks show `wall`, ascending: none, one or two. */
export function instantsAt(zone: Zone, wall: number): number[] {
  const before = zone.offsetMs(wall - DAY_MS);
  const after = zone.offsetMs(wall + DAY_MS);
  const out: number[] = [];
  for (const offset of before === after ? [before] : [before, after]) {
    const t = wall - offset;
    if (zone.offsetMs(t) === offset) out.push(t);
  }
  return out.sort((a, b) => a - b);
}

/**
 * For a wall-clock time the clocks skip: the instant they jump over it (the first second of the new
 * offset). The offset of the day before holds until then, the one of the day after from then on.
 */
export function gapEnd(zone: Zone, wall: number): number {
  const before = zone.offsetMs(wall - DAY_MS);
  let lo = wall - zone.offsetMs(wall + DAY_MS); // still before the jump
  let hi = wall - before; // already after it
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (zone.offsetMs(mid) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** An instant as the zone's wall-clock time with its offset: `2027-03-29 02:30 +02:00` (seconds only when not 0). */
export function wallClockText(instant: number, zone: Zone = LOCAL): string {
  const offset = zone.offsetMs(instant);
  const iso = new Date(instant + offset).toISOString();
  const time = iso.slice(17, 19) === '00' ? iso.slice(11, 16) : iso.slice(11, 19);
  const minutes = Math.abs(offset) / 60_000;
  const sign = offset < 0 ? '-' : '+';
  return `${iso.slice(0, 10)} ${time} ${sign}${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}
