/**
 * Which versions a retention policy keeps, as vzdump's `prune-backups` / proxmox-backup's prune:
 * versions are taken newest first; keep-last keeps the N newest; then keep-hourly, -daily, -weekly
 * (ISO weeks), -monthly and -yearly each keep the newest version of every period not yet covered,
 * for up to N periods. Protected versions are always kept and count toward no rule. Pure logic.
 */
export interface PruneOptions {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
}

export interface PruneCandidate {
  version: number;
  time: Date;
  protected: boolean;
}

export type PruneMark = 'keep' | 'remove' | 'protected';

type PeriodOf = (c: PruneCandidate) => string;

const pad = (n: number): string => String(n).padStart(2, '0');

/** ISO-8601 week of the local date, as `YYYY/WW` (weeks start on Monday; week 1 holds the first Thursday). */
export function isoWeek(d: Date): string {
  const date = new Date(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()));
  const dayNum = date.getUTCDay() || 7;
  date.setUTCDate(date.getUTCDate() + 4 - dayNum);
  const yearStart = Date.UTC(date.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((date.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${date.getUTCFullYear()}/${pad(week)}`;
}

const RULES: Array<[keyof PruneOptions, PeriodOf]> = [
  ['keepLast', (c) => String(c.version)],
  ['keepHourly', (c) => `${c.time.getFullYear()}/${pad(c.time.getMonth() + 1)}/${pad(c.time.getDate())}/${pad(c.time.getHours())}`],
  ['keepDaily', (c) => `${c.time.getFullYear()}/${pad(c.time.getMonth() + 1)}/${pad(c.time.getDate())}`],
  ['keepWeekly', (c) => isoWeek(c.time)],
  ['keepMonthly', (c) => `${c.time.getFullYear()}/${pad(c.time.getMonth() + 1)}`],
  ['keepYearly', (c) => String(c.time.getFullYear())],
];

export function hasRetention(opts: PruneOptions): boolean {
  return RULES.some(([key]) => (opts[key] ?? 0) > 0);
}

/** Marks every candidate; with no rule set at all, everything is kept (keep-all). */
export function selectPrune(candidates: PruneCandidate[], opts: PruneOptions): Map<number, PruneMark> {
  const list = [...candidates].sort((a, b) => b.time.getTime() - a.time.getTime() || b.version - a.version);
  const marks = new Map<number, PruneMark>();
  for (const c of list) if (c.protected) marks.set(c.version, 'protected');
  if (!hasRetention(opts)) {
    for (const c of list) if (!marks.has(c.version)) marks.set(c.version, 'keep');
    return marks;
  }
  for (const [key, periodOf] of RULES) {
    const keep = opts[key] ?? 0;
    if (keep > 0) markRule(list, marks, keep, periodOf);
  }
  for (const c of list) if (!marks.has(c.version)) marks.set(c.version, 'remove');
  return marks;
}

function markRule(list: PruneCandidate[], marks: Map<number, PruneMark>, keep: number, periodOf: PeriodOf): void {
  const covered = new Set(list.filter((c) => marks.get(c.version) === 'keep').map(periodOf));
  const kept = new Set<string>();
  for (const c of list) {
    if (marks.has(c.version)) continue;
    const period = periodOf(c);
    if (covered.has(period) || kept.has(period)) continue;
    if (kept.size >= keep) break;
    kept.add(period);
    marks.set(c.version, 'keep');
  }
}
