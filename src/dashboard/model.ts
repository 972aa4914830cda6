/**
 * The dashboard's model: pure functions from the API's JSON to what the screen draws (chart series,
 * gauge, table rows, usage lines, log lines, box layout). No I/O, no blessed: unit-tested alone.
 *
 * Rates are MiB/s (as the CLI and vzdump print them): the change of readBytes / writtenBytes between two
 * progress samples of the same task and item, over the change of elapsedSeconds. Rotation sizes are sums
 * over a guest's kept versions: logical = disks' sizes, stored = bytes each version newly wrote to the
 * store after compression; the dedup ratio is logical / stored. The guest table is GET /api/v1/overview's
 * per-guest state: last result, when, how long the guest was down, and its flags.
 */
import { formatBytes, MiB } from '../core/index.js';
import type { BackupJson, DatastoreStatus, JobJson, OverviewGuestJson, RunningTask, StatusJson, TaskJson, TaskLogLineJson } from './api.js';

// ---- throughput ---------------------------------------------------------------------------------

/** One progress sample; `key` names what it measures (task, phase, item): rates only within one key. */
export interface ProgressSample {
  key: string;
  readBytes: number;
  writtenBytes: number;
  elapsedSeconds: number;
}

/** MiB/s */
export interface Rate {
  read: number;
  write: number;
}

export function sampleOf(task: RunningTask | undefined): ProgressSample | undefined {
  const p = task?.progress;
  if (!task || !p) return undefined;
  return {
    key: `${task.taskId}\0${p.phase}\0${p.item}`,
    readBytes: num(p.readBytes),
    writtenBytes: num(p.writtenBytes),
    elapsedSeconds: num(p.elapsedSeconds),
  };
}

/** The rate between two samples; undefined when they measure different things or time did not advance. */
export function rateBetween(prev: ProgressSample | undefined, next: ProgressSample): Rate | undefined {
  if (!prev || prev.key !== next.key) return undefined;
  const dt = next.elapsedSeconds - prev.elapsedSeconds;
  const dRead = next.readBytes - prev.readBytes;
  const dWrite = next.writtenBytes - prev.writtenBytes;
  if (!(dt > 0) || dRead < 0 || dWrite < 0) return undefined;
  return { read: dRead / dt / MiB, write: dWrite / dt / MiB };
}

/** The chart's history: one point per poll that brought new progress (or found nothing running). */
export interface ThroughputSeries {
  labels: string[];
  read: number[];
  write: number[];
  last?: ProgressSample;
}

export const emptySeries = (): ThroughputSeries => ({ labels: [], read: [], write: [] });

/**
 * The series after one poll. A running task's first sample (or a new item) is only a baseline; a sample
 * with no new progress adds nothing; no task with progress adds a 0 point, so the chart keeps moving.
 */
export function addSample(series: ThroughputSeries, running: RunningTask | undefined, label: string, maxPoints = 60): ThroughputSeries {
  const sample = sampleOf(running);
  let point: Rate | undefined;
  if (sample) point = rateBetween(series.last, sample);
  else point = { read: 0, write: 0 };
  if (sample && series.last && sample.key === series.last.key && !point) return series;
  const next: ThroughputSeries = { labels: series.labels, read: series.read, write: series.write, last: sample };
  if (point) {
    next.labels = [...series.labels, label].slice(-maxPoints);
    next.read = [...series.read, point.read].slice(-maxPoints);
    next.write = [...series.write, point.write].slice(-maxPoints);
  }
  return next;
}

/** The newest point of the series (0 when there is none). */
export function currentRate(series: ThroughputSeries): Rate {
  return { read: series.read.at(-1) ?? 0, write: series.write.at(-1) ?? 0 };
}

/** A round upper bound for the y axis: 1, 2, 5, 10, 20, 50, ... at least 1 MiB/s. */
export function niceMax(value: number): number {
  if (!(value > 1)) return 1;
  const exp = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * exp) return step * exp;
  return 10 * exp;
}

/** What the line chart gets: at least two points (a line needs two), a y range that is never empty. */
export function chartData(series: ThroughputSeries): { x: string[]; read: number[]; write: number[]; maxY: number } {
  const pad = Math.max(0, 2 - series.read.length);
  const x = [...Array<string>(pad).fill(' '), ...series.labels];
  const read = [...Array<number>(pad).fill(0), ...series.read];
  const write = [...Array<number>(pad).fill(0), ...series.write];
  return { x, read, write, maxY: niceMax(Math.max(...read, ...write) * 1.1) };
}

/**
 * The chart's title with the newest rates, the longest form that fits `width` (a box label must not wrap);
 * `paint` may colour the series names as their lines.
 */
export function throughputLabel(rate: Rate, width = Infinity, paint: (text: string, series: 'read' | 'write') => string = (t) => t): string {
  const r = rate.read.toFixed(1);
  const w = rate.write.toFixed(1);
  const forms: Array<[string, string, string]> = [
    [' Throughput MiB/s  ', 'read', `${r}  `],
    [' MiB/s ', 'read', `${r} `],
    [' ', 'r', `${r} `],
  ];
  for (const [head, readName, readValue] of forms) {
    const writeName = readName === 'r' ? 'w' : 'write';
    const plain = `${head}${readName} ${readValue}${writeName} ${w} `;
    if (plain.length <= width || readName === 'r') return `${head}${paint(readName, 'read')} ${readValue}${paint(writeName, 'write')} ${w} `;
  }
  return '';
}

// ---- running task -------------------------------------------------------------------------------

/** The task the gauge, chart and log follow: the first running one with progress, else the first. */
export function mainTask(status: StatusJson | undefined): RunningTask | undefined {
  const running = status?.running ?? [];
  return running.find((t) => t.progress) ?? running[0];
}

export interface GaugeView {
  /** 0..100 */
  percent: number;
  label: string;
  lines: string[];
}

export function gaugeOf(task: RunningTask | undefined): GaugeView {
  if (!task) return { percent: 0, label: ' no task running ', lines: [] };
  const p = task.progress;
  const what = `${task.type}${task.jobId ? ` ${task.jobId}` : ''}`;
  if (!p) return { percent: 0, label: ` ${what} `, lines: [] };
  const total = num(p.totalBytes);
  const read = num(p.readBytes);
  const elapsed = num(p.elapsedSeconds);
  const percent = total > 0 ? Math.min(100, (read / total) * 100) : 0;
  const eta = read > 0 && elapsed > 0 && total > read ? ((total - read) * elapsed) / read : undefined;
  return {
    percent,
    label: ` ${what} ${p.item} `,
    lines: [`${shortBytes(read)} of ${shortBytes(total)}`, `${shortDuration(elapsed)}${eta !== undefined ? `, ETA ${shortDuration(eta)}` : ''}`],
  };
}

// ---- rotation -----------------------------------------------------------------------------------

/** The versions of one store as the API listed them. */
export interface StoreBackups {
  store: string;
  dir?: string;
  backups: BackupJson[];
}

export interface RotationRow {
  guest: string;
  store: string;
  kept: number;
  /** keep N of the job that covers the guest on this store; undefined when none does or it keeps all */
  keep: number | undefined;
  oldest: string | undefined;
  newest: string | undefined;
  logicalBytes: number;
  storedBytes: number;
  ratio: number | undefined;
}

/** logical / stored; undefined when nothing was stored (nothing to divide by). */
export function dedupRatio(logicalBytes: number, storedBytes: number): number | undefined {
  return storedBytes > 0 ? logicalBytes / storedBytes : undefined;
}

export function formatRatio(ratio: number | undefined): string {
  if (ratio === undefined) return '-';
  return ratio >= 100 ? `${Math.round(ratio)}x` : `${ratio.toFixed(1)}x`;
}

const storeMatches = (jobStore: string, store: string, dir?: string): boolean => jobStore === store || (dir !== undefined && jobStore === dir);

/** Whether a job backs up the guest (its id list, or all but the excluded). */
export function jobCovers(job: JobJson, guest: string): boolean {
  if (job.all) return !(job.exclude ?? []).includes(guest);
  return (job.vmid ?? []).includes(guest);
}

/** The job that covers a guest on a store: an enabled one first; `store ''` (unknown) matches any job. */
export function coveringJob(jobs: JobJson[], guest: string, store: string, dir?: string): JobJson | undefined {
  const covering = jobs.filter((j) => jobCovers(j, guest) && (store === '' || storeMatches(j.store, store, dir)));
  return covering.find((j) => j.enabled !== false) ?? covering[0];
}

/** One row per guest and store: versions found (and guests a job names that have none yet), by guest id. */
export function rotationRows(stores: StoreBackups[], jobs: JobJson[]): RotationRow[] {
  const rows: RotationRow[] = [];
  for (const { store, dir, backups } of stores) {
    const byGuest = new Map<string, BackupJson[]>();
    for (const b of backups) byGuest.set(String(b.id), [...(byGuest.get(String(b.id)) ?? []), b]);
    for (const job of jobs) {
      if (job.all || !(store === '' || storeMatches(job.store, store, dir))) continue;
      for (const guest of job.vmid ?? []) if (!byGuest.has(guest)) byGuest.set(guest, []);
    }
    for (const [guest, versions] of byGuest) {
      const times = versions
        .map((v) => toDate(v.time))
        .filter((d): d is Date => d !== undefined)
        .sort((a, b) => a.getTime() - b.getTime());
      const logicalBytes = sum(versions.map((v) => v.logicalBytes));
      const storedBytes = sum(versions.map((v) => v.storedBytes));
      const keep = coveringJob(jobs, guest, store, dir)?.keep;
      rows.push({
        guest,
        store,
        kept: versions.length,
        keep: typeof keep === 'number' ? keep : undefined,
        oldest: times[0] ? formatShortTime(times[0]) : undefined,
        newest: times.at(-1) ? formatShortTime(times.at(-1) as Date) : undefined,
        logicalBytes,
        storedBytes,
        ratio: dedupRatio(logicalBytes, storedBytes),
      });
    }
  }
  return rows.sort((a, b) => compareIds(a.guest, b.guest) || a.store.localeCompare(b.store));
}

export interface TableView {
  headers: string[];
  widths: number[];
  data: string[][];
}

const COLUMNS: Array<{ header: string; width: number; drop: number; cell: (r: RotationRow) => string }> = [
  { header: 'Guest', width: 6, drop: 0, cell: (r) => r.guest },
  { header: 'Store', width: 8, drop: 4, cell: (r) => r.store },
  { header: 'Kept', width: 6, drop: 0, cell: (r) => `${r.kept}/${r.keep ?? '-'}` },
  { header: 'Oldest', width: 14, drop: 3, cell: (r) => r.oldest ?? '-' },
  { header: 'Newest', width: 14, drop: 2, cell: (r) => r.newest ?? '-' },
  { header: 'Logical', width: 8, drop: 1, cell: (r) => shortBytes(r.logicalBytes) },
  { header: 'Stored', width: 8, drop: 1, cell: (r) => shortBytes(r.storedBytes) },
  { header: 'Dedup', width: 6, drop: 0, cell: (r) => formatRatio(r.ratio) },
];

/** The table in `width` columns (one space between cells): narrow tables drop Store, Oldest, Newest, sizes. */
export function rotationTable(rows: RotationRow[], width: number): TableView {
  let columns = COLUMNS;
  for (const level of [4, 3, 2, 1]) {
    if (sum(columns.map((c) => c.width + 1)) <= width) break;
    columns = columns.filter((c) => c.drop !== level);
  }
  return { headers: columns.map((c) => c.header), widths: columns.map((c) => c.width), data: rows.map((r) => columns.map((c) => c.cell(r))) };
}

// ---- guests -------------------------------------------------------------------------------------

export interface GuestRow {
  guest: string;
  name: string;
  /** `ok`, `FAILED`, `never` */
  result: string;
  last: string | undefined;
  downtime: string;
  flags: string;
  /** any flag: the row needs a look */
  flagged: boolean;
}

/** The overview's flags in words (upper case for the ones that mean no usable backup came). */
const FLAG_WORDS: Record<string, string> = {
  'not-backed-up': 'NOT BACKED UP',
  failed: 'FAILED',
  overdue: 'overdue',
  'verify-failed': 'verify failed',
  'boot-test-failed': 'boot test failed',
};

/** One row per guest of the overview, by guest id. */
export function guestRows(guests: readonly OverviewGuestJson[]): GuestRow[] {
  return [...guests]
    .sort((a, b) => compareIds(a.id, b.id))
    .map((g) => {
      const last = g.lastBackup ?? undefined;
      const at = toDate(last?.time);
      const flags = g.flags ?? [];
      return {
        guest: g.id,
        name: g.name ?? '',
        result: !last ? 'never' : last.result === 'ok' ? 'ok' : 'FAILED',
        last: at ? formatShortTime(at) : undefined,
        downtime: typeof last?.downtimeMs === 'number' ? shortDuration(last.downtimeMs / 1000) : '-',
        flags: flags.map((f) => FLAG_WORDS[f] ?? f).join(', '),
        flagged: flags.length > 0,
      };
    });
}

const GUEST_COLUMNS: Array<{ header: string; width: number; drop: number; cell: (r: GuestRow) => string }> = [
  { header: 'Guest', width: 6, drop: 0, cell: (r) => r.guest },
  { header: 'Name', width: 10, drop: 3, cell: (r) => r.name.slice(0, 10) || '-' },
  { header: 'Last', width: 6, drop: 0, cell: (r) => r.result },
  { header: 'Time', width: 14, drop: 1, cell: (r) => r.last ?? '-' },
  { header: 'Down', width: 6, drop: 2, cell: (r) => r.downtime },
];

/** The guest table in `width` columns (two spaces between cells): the flags take what is left (at least 8); narrow tables drop Name, Down, Time. */
export function guestTable(rows: GuestRow[], width: number): TableView {
  let columns = GUEST_COLUMNS;
  const used = (cs: typeof columns): number => sum(cs.map((c) => c.width + 2));
  for (const level of [3, 2, 1]) {
    if (used(columns) + 8 <= width) break;
    columns = columns.filter((c) => c.drop !== level);
  }
  const flagsWidth = Math.max(8, width - used(columns));
  return {
    headers: [...columns.map((c) => c.header), 'Flags'],
    widths: [...columns.map((c) => c.width), flagsWidth],
    data: rows.map((r) => [...columns.map((c) => c.cell(r)), r.flags.slice(0, flagsWidth) || '-']),
  };
}

// ---- datastores ---------------------------------------------------------------------------------

/**
 * The datastores in `width` x `rows`: two lines each when they fit (`name [####....] 52%`, then
 * `used 1.2 TiB free 1.1 TiB`), else one (`name [##..] 52% 1.1 TiB free`, the bar shrinking, then gone).
 * An S3 datastore has no size to fill: one line, `name S3, 1.2 TiB stored`.
 */
export function usageLines(datastores: DatastoreStatus[], width: number, rows = 1): string[] {
  if (datastores.length === 0) return ['no datastores'];
  const twoLines = rows >= datastores.length * 2;
  const nameWidth = Math.min(10, Math.max(...datastores.map((d) => d.name.length)));
  const bar = (pct: number, barWidth: number): string => {
    const filled = Math.round((barWidth * pct) / 100);
    return `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]`;
  };
  return datastores.flatMap((d) => {
    const name = d.name.slice(0, nameWidth).padEnd(nameWidth);
    if (d.error) return [`${name} error: ${d.error}`.slice(0, width)];
    if (d.kind === 's3') return [`${name} S3, ${shortBytes(num(d.used))} stored`.slice(0, width)];
    const used = num(d.used);
    const total = num(d.total) || used + num(d.free);
    const free = d.free !== undefined ? num(d.free) : Math.max(0, total - used);
    const pct = total > 0 ? Math.round((used / total) * 100) : 0;
    const tail = `${String(pct).padStart(3)}%${twoLines ? '' : ` ${shortBytes(free)} free`}`;
    const barWidth = width - name.length - tail.length - 4;
    const first = barWidth < 4 ? `${name} ${tail}` : `${name} ${bar(pct, barWidth)} ${tail}`;
    if (!twoLines) return [first.slice(0, width)];
    const second = [` used ${shortBytes(used)}  free ${shortBytes(free)}`, ` ${shortBytes(free)} free`].find((l) => l.length <= width) ?? '';
    return [first.slice(0, width), second];
  });
}

// ---- log ----------------------------------------------------------------------------------------

/** The task whose log the dashboard shows: the one it follows, else the newest task. */
export function logTaskId(status: StatusJson | undefined, tasks: TaskJson[] | undefined): string | undefined {
  const running = mainTask(status);
  if (running) return running.taskId;
  const newest = [...(tasks ?? [])].sort((a, b) => (b.start ?? '').localeCompare(a.start ?? ''))[0];
  return newest?.id;
}

export function formatTaskLine(line: TaskLogLineJson): string {
  const d = toDate(line.time);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const time = d ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` : '--:--:--';
  return `${time} ${line.level === 'INFO' ? '' : `${line.level}: `}${line.message}`;
}

/** `42s`, `3m05s`, `1h02m`, `2d3h`. */
export function shortDuration(seconds: number | undefined): string {
  if (seconds === undefined || !(seconds >= 0)) return '-';
  const s = Math.round(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  return m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** A box label cut to `width` columns (blessed wraps a longer one into the box). */
export function fitLabel(label: string, width: number): string {
  if (label.length <= width) return label;
  return width <= 1 ? '' : `${label.slice(0, width - 1).trimEnd()}~ `.slice(0, width);
}

// ---- layout -------------------------------------------------------------------------------------

export interface Rect {
  top: number;
  left: number;
  width: number;
  height: number;
}

export interface Layout {
  chart?: Rect;
  gauge: Rect;
  usage?: Rect;
  /** the guest table, on its own only in tall terminals (else it shares `table`, switched with `g`) */
  guests?: Rect;
  table?: Rect;
  log: Rect;
}

/** The gauge needs 6 rows (blessed-contrib draws its bar on rows 2-3 of the box). */
export const GAUGE_HEIGHT = 6;

/**
 * Boxes for a terminal of `width` x `height`, the table sized for `tableRows` rows. 80x24: chart 48x10
 * beside the gauge and datastores, rotation table 7 rows, log 7 rows. Below 20 lines (or 50 columns)
 * the chart goes (its rates move into the gauge's label) and the gauge and datastores share 6 lines;
 * then the datastores, then the table go; the log keeps at least 3 lines. With `guestRows` and at least
 * 24 lines below the top row (38 in all), the guest table gets a box of its own above the rotation table
 * (at most a third of those lines).
 */
export function layout(width: number, height: number, tableRows = Infinity, guestRows = 0): Layout {
  const w = Math.max(20, width);
  const h = Math.max(GAUGE_HEIGHT + 3, height);
  const full = h >= 20 && w >= 50;
  const top = full ? Math.min(14, Math.max(10, Math.floor(h * 0.4))) : GAUGE_HEIGHT;
  const leftWidth = w >= 50 ? Math.floor(w * 0.6) : w;
  const out: Layout = { gauge: { top: 0, left: 0, width: w, height: GAUGE_HEIGHT }, log: { top: 0, left: 0, width: w, height: 0 } };
  if (full) {
    out.chart = { top: 0, left: 0, width: leftWidth, height: top };
    out.gauge = { top: 0, left: leftWidth, width: w - leftWidth, height: GAUGE_HEIGHT };
    if (top - GAUGE_HEIGHT >= 3) out.usage = { top: GAUGE_HEIGHT, left: leftWidth, width: w - leftWidth, height: top - GAUGE_HEIGHT };
  } else if (leftWidth < w) {
    out.gauge = { top: 0, left: 0, width: leftWidth, height: GAUGE_HEIGHT };
    out.usage = { top: 0, left: leftWidth, width: w - leftWidth, height: GAUGE_HEIGHT };
  }
  const below = h - top;
  const guestsHeight = guestRows > 0 && below >= 24 ? Math.min(guestRows + 3, Math.floor(below / 3)) : 0;
  if (guestsHeight > 0) out.guests = { top, left: 0, width: w, height: guestsHeight };
  const tableTop = top + guestsHeight;
  const rest = below - guestsHeight;
  const wanted = Math.max(4, Math.min(tableRows, 50) + 3);
  const tableHeight = rest >= 8 ? Math.min(wanted, Math.ceil(rest / 2) + (rest >= 20 ? Math.floor(rest / 6) : 0)) : rest >= 7 ? 4 : 0;
  if (tableHeight > 0) out.table = { top: tableTop, left: 0, width: w, height: tableHeight };
  out.log = { top: tableTop + tableHeight, left: 0, width: w, height: rest - tableHeight };
  return out;
}

// ---- helpers ------------------------------------------------------------------------------------

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const sum = (values: unknown[]): number => values.reduce<number>((a, v) => a + num(v), 0);

function compareIds(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  return Number.isFinite(na) && Number.isFinite(nb) ? na - nb : a.localeCompare(b);
}

/** ISO text or epoch seconds / milliseconds. */
export function toDate(value: string | number | undefined | null): Date | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const d = typeof value === 'number' ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** `YY-MM-DD HH:MM`, local time. */
export function formatShortTime(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(d.getFullYear() % 100)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Sizes in at most 8 characters: `512 B`, `3.4 MiB`, `1.2 TiB`, `123 GiB`. */
export function shortBytes(bytes: number): string {
  const text = formatBytes(bytes, 1);
  const [value, unit] = text.split(' ');
  return Number(value) >= 100 ? `${Math.round(Number(value))} ${unit}` : text;
}
