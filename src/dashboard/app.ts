/**
 * The dashboard's loop: poll the API every interval (status, the followed task's log; jobs, backups
 * and the overview's guest states every few polls and whenever the set of running tasks changes),
 * feed the model, draw the screen.
 * API errors become red lines in the log box (once per distinct message), never an exit.
 */
import { ApiClient, ApiError, type JobJson, type OverviewGuestJson, type StatusJson, type TaskJson } from './api.js';
import {
  addSample,
  emptySeries,
  formatTaskLine,
  shortDuration,
  gaugeOf,
  guestRows,
  guestTable,
  logTaskId,
  mainTask,
  rotationRows,
  rotationTable,
  usageLines,
  type StoreBackups,
  type ThroughputSeries,
} from './model.js';
import { DashboardScreen, type DashboardView, type LogEntry } from './screen.js';

export interface DashboardOptions {
  url: string;
  token?: string;
  /** seconds between polls */
  interval: number;
  /** jobs and backups are fetched every this many polls (and when running tasks change) */
  slowEvery?: number;
  signal?: AbortSignal;
}

const MAX_LOG = 500;

export class Dashboard {
  private readonly api: ApiClient;
  private series: ThroughputSeries = emptySeries();
  private status?: StatusJson;
  private tasks?: TaskJson[];
  private jobs: JobJson[] = [];
  private stores: StoreBackups[] = [];
  private guests: OverviewGuestJson[] = [];
  private log: LogEntry[] = [];
  private logTask?: string;
  private logNext = 0;
  private shownErrors = new Set<string>();
  private runningKey = '';
  private tick = 0;

  constructor(private readonly options: DashboardOptions) {
    this.api = new ApiClient({ url: options.url, token: options.token, timeoutMs: Math.max(2000, options.interval * 3000), signal: options.signal });
  }

  /** One poll: never throws; failures are logged. */
  async poll(): Promise<void> {
    const errors = new Map<string, string[]>();
    const attempt = async <T>(call: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await call();
      } catch (err) {
        const reason = err instanceof ApiError ? err.reason : err instanceof Error ? err.message : String(err);
        const path = err instanceof ApiError ? err.path.replace(/\?.*$/, '').replace(/^\/api\/v1\//, '') : '';
        errors.set(reason, [...(errors.get(reason) ?? []), path]);
        return undefined;
      }
    };
    const now = new Date();
    const status = await attempt(() => this.api.status());
    if (status) {
      this.status = status;
      this.series = addSample(this.series, mainTask(status), clock(now));
    }
    const running = mainTask(this.status);
    if (!running || this.tick % 5 === 0) this.tasks = (await attempt(() => this.api.tasks(10))) ?? this.tasks;

    const runningKey = (this.status?.running ?? []).map((t) => t.taskId).join(',');
    const full = this.tick % (this.options.slowEvery ?? 5) === 0 || runningKey !== this.runningKey;
    if (full) {
      this.runningKey = runningKey;
      await this.refreshRotation(attempt);
    }

    const id = logTaskId(this.status, this.tasks);
    if (id !== this.logTask && id !== undefined) {
      this.logTask = id;
      this.logNext = 0;
      this.push({ kind: 'info', text: `-- task ${id} --` });
    }
    if (this.logTask) {
      const task = this.logTask;
      const lines = await attempt(() => this.api.taskLog(task, this.logNext));
      for (const line of lines ?? []) {
        this.push({ kind: 'task', text: formatTaskLine(line) });
        this.logNext = Math.max(this.logNext, line.n + 1);
      }
    }

    // one line per cause, and only when it is new: a server that stays down is logged once; a cause is
    // forgotten after a poll of every route (jobs and backups included) that did not meet it
    for (const [reason, paths] of errors) {
      if (!this.shownErrors.has(reason)) this.push({ kind: 'error', text: `${clock(now)} API ${reason} (${paths.filter(Boolean).join(', ')})` });
    }
    this.shownErrors = full ? new Set(errors.keys()) : new Set([...this.shownErrors, ...errors.keys()]);
    this.tick++;
  }

  private async refreshRotation(attempt: <T>(call: () => Promise<T>) => Promise<T | undefined>): Promise<void> {
    const jobs = await attempt(() => this.api.jobs());
    if (jobs) this.jobs = jobs;
    const overview = await attempt(() => this.api.overview());
    if (overview) this.guests = overview.guests ?? [];
    const datastores = (this.status?.datastores ?? []).filter((d) => !d.error);
    const wanted: Array<{ store: string; dir?: string }> = datastores.length > 0 ? datastores.map((d) => ({ store: d.name, dir: d.dir })) : [{ store: '' }];
    const stores: StoreBackups[] = [];
    for (const w of wanted) {
      const backups = await attempt(() => this.api.backups(w.store || undefined));
      const before = this.stores.find((s) => s.store === w.store);
      if (backups) stores.push({ ...w, backups });
      else if (before) stores.push(before);
    }
    this.stores = stores;
  }

  private push(entry: LogEntry): void {
    this.log.push(entry);
    if (this.log.length > MAX_LOG) this.log.splice(0, this.log.length - MAX_LOG);
  }

  view(): DashboardView {
    const s = this.status;
    const rows = rotationRows(this.stores, this.jobs);
    const guests = guestRows(this.guests);
    const flagged = guests.filter((g) => g.flagged).length;
    const running = mainTask(s);
    return {
      guests: (width) => guestTable(guests, width),
      guestRows: guests.length,
      guestLabel: ` guests  ${flagged === 0 ? 'all fine' : `${flagged} flagged`} `,
      series: this.series,
      gauge: gaugeOf(running),
      usage: (width, rows) => usageLines(s?.datastores ?? [], width, rows),
      usageLabel: ' datastores ',
      table: (width) => rotationTable(rows, width),
      tableRows: rows.length,
      tableLabel: ` rotation  ${s?.node ?? '?'}  coldvault ${s?.version ?? '?'}  up ${shortDuration(s?.uptime)} `,
      log: this.log,
      logLabel: this.logTask ? ` log ${this.logTask}${running ? '' : ' (last task)'} ` : ` log  ${this.api.url} `,
    };
  }
}

/** Runs the dashboard until q / Ctrl-C (or SIGTERM / SIGHUP); resolves with the exit code. */
export async function runDashboard(options: DashboardOptions): Promise<number> {
  const stop = new AbortController();
  const dashboard = new Dashboard({ ...options, signal: stop.signal });
  const quit = (): void => stop.abort();
  const screen = new DashboardScreen({ title: 'coldvault dashboard', onQuit: quit });
  process.once('SIGTERM', quit);
  process.once('SIGHUP', quit);
  try {
    screen.render(dashboard.view());
    while (!stop.signal.aborted) {
      await dashboard.poll();
      if (stop.signal.aborted) break;
      screen.render(dashboard.view());
      await sleep(options.interval * 1000, stop.signal);
    }
  } finally {
    screen.destroy();
    process.off('SIGTERM', quit);
    process.off('SIGHUP', quit);
  }
  return 0;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

const clock = (d: Date): string =>
  `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:${String(d.getSeconds()).padStart(2, '0')}`;
