/**
 * When will a datastore be full? A least-squares line through the last FORECAST_WINDOW_DAYS days of
 * its usage series (one point per day: x the day, y the bytes, usage.ts), extrapolated to the day it
 * reaches the store's capacity in the same units: today's bytes plus the filesystem's free space
 * (on a disk that holds only the datastore: used + free). The answer is the first whole day on or
 * after that crossing (today when the line is there already). None (null) when the slope is 0 or
 * below (flat or falling usage), when fewer than FORECAST_MIN_DAYS days are in the window, or when
 * the free space is not known (an S3 bucket has none), and when the crossing lies more than
 * FORECAST_MAX_DAYS ahead (a trend that slow is no forecast).
 *
 * Pure: the same points give the same day; days are `YYYY-MM-DD` (days.ts).
 */
import { dayNumber, dayOfNumber } from './days.js';

/** Days of history the line is fitted to (the newest ones). */
export const FORECAST_WINDOW_DAYS = 30;
/** Fewer days than this in the window: no forecast. */
export const FORECAST_MIN_DAYS = 7;
/** A crossing further ahead than this (100 years) is no forecast. */
export const FORECAST_MAX_DAYS = 36_500;

export const FULL_ON_METHOD =
  `least-squares line through the last ${FORECAST_WINDOW_DAYS} days of stored bytes (one point per day, at least ${FORECAST_MIN_DAYS}), ` +
  "extrapolated to today's stored bytes plus the free space; none when the slope is 0 or below";

export interface DayPoint {
  day: string;
  bytes: number;
}

export interface Line {
  /** y at x = 0 */
  intercept: number;
  slope: number;
}

/** The least-squares line through (xs[i], ys[i]); undefined for fewer than 2 points or when every x is the same. */
export function leastSquares(xs: readonly number[], ys: readonly number[]): Line | undefined {
  const n = Math.min(xs.length, ys.length);
  if (n < 2) return undefined;
  const mean = (v: readonly number[]): number => v.slice(0, n).reduce((a, b) => a + b, 0) / n;
  const mx = mean(xs);
  const my = mean(ys);
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    sxx += dx * dx;
    sxy += dx * ((ys[i] as number) - my);
  }
  if (sxx === 0) return undefined;
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

export interface Forecast {
  /** the day the store is expected to be full, null when there is no forecast */
  fullOn: string | null;
  /** the fitted line's slope in bytes per day (null: too few points to fit) */
  bytesPerDay: number | null;
}

/**
 * The forecast from a day series (ascending, one point per day, the last one today) and the free bytes.
 * x is counted in days relative to the last point, so the sums stay small.
 */
export function forecastFullOn(points: readonly DayPoint[], freeBytes: number | null): Forecast {
  const window = points.slice(-FORECAST_WINDOW_DAYS);
  const last = window.at(-1);
  if (!last || window.length < FORECAST_MIN_DAYS) return { fullOn: null, bytesPerDay: null };
  const today = dayNumber(last.day);
  const line = leastSquares(
    window.map((p) => dayNumber(p.day) - today),
    window.map((p) => p.bytes),
  );
  if (!line) return { fullOn: null, bytesPerDay: null };
  if (!(line.slope > 0) || freeBytes === null || !Number.isFinite(freeBytes)) return { fullOn: null, bytesPerDay: line.slope };
  const capacity = last.bytes + Math.max(0, freeBytes);
  const days = Math.max(0, Math.ceil((capacity - line.intercept) / line.slope));
  if (!(days <= FORECAST_MAX_DAYS)) return { fullOn: null, bytesPerDay: line.slope };
  return { fullOn: dayOfNumber(today + days), bytesPerDay: line.slope };
}
