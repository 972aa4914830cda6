/**
 * Measures how long one guest run holds its guest off (core's Downtime): the run wraps the steps
 * that take the guest down and bring it back in `time(phase, work)`:
 *   shutdown  the ACPI shutdown, and the hard stop after a timeout (forceStop): one phase
 *   snapshot  the cold snapshots of the disks (none: 0)
 *   start     the start command
 * The guest is off from the shutdown's beginning to the start's successful end; the downtime is known
 * only then (a guest coldvault did not shut down, e.g. one an interrupted run left off, has none).
 * A phase timed again keeps its first beginning (a retried start counts both tries). Durations come
 * from a monotonic clock, so a wall clock stepped meanwhile does not bend them.
 *
 * Whoever writes the downtime down takes it with `report()` (the pipeline, for the manifest and the
 * version log); `logUnreported` logs the line at the end of the run when nobody did (the guest was
 * started after the manifest was written, or the backup failed).
 */
import { type Downtime, downtimeMillis, formatDowntime, type TaskLog } from '../core/index.js';

export type DowntimePhase = 'shutdown' | 'snapshot' | 'start';

interface Span {
  begin: number;
  end?: number;
  ok?: boolean;
}

export class DowntimeClock {
  private readonly spans = new Map<DowntimePhase, Span>();
  private reported = false;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Runs `work` as (part of) `phase`; its end is marked whether it succeeds or throws. */
  async time<T>(phase: DowntimePhase, work: () => Promise<T>): Promise<T> {
    const span = this.spans.get(phase) ?? { begin: this.now() };
    this.spans.set(phase, span);
    try {
      const result = await work();
      Object.assign(span, { end: this.now(), ok: true });
      return result;
    } catch (err) {
      Object.assign(span, { end: this.now(), ok: false });
      throw err;
    }
  }

  /** The downtime once the guest was shut down and started again; undefined before or without that. */
  downtime(): Downtime | undefined {
    const off = this.spans.get('shutdown')?.begin;
    const start = this.spans.get('start');
    if (off === undefined || start?.end === undefined || !start.ok) return undefined;
    return { offMs: start.end - off, shutdownMs: this.length('shutdown'), snapshotMs: this.length('snapshot'), startMs: this.length('start') };
  }

  /** The time off in whole milliseconds, for the task result; undefined while unknown. */
  offMs(): number | undefined {
    const downtime = this.downtime();
    return downtime && downtimeMillis(downtime);
  }

  /** The downtime for whoever writes it down (manifest and version log): this run then logs no line of its own. */
  report(): Downtime | undefined {
    const downtime = this.downtime();
    if (downtime) this.reported = true;
    return downtime;
  }

  /** Logs `guest <vmid> was off for ...` when the guest was off and came back, and nobody reported it. */
  logUnreported(vmid: string, log: TaskLog): void {
    const downtime = this.reported ? undefined : this.report();
    if (downtime) log.info(formatDowntime(vmid, downtime));
  }

  private length(phase: DowntimePhase): number {
    const span = this.spans.get(phase);
    return span?.end === undefined ? 0 : span.end - span.begin;
  }
}
