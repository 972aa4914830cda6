/** Turns per-disk counters into throttled progress events for the whole flow (at most 4 a second). */
import type { ProgressListener, TransferProgress } from '../core/index.js';

export interface MeterCounters {
  readBytes: number;
  zeroBytes: number;
  dedupBytes: number;
  storedBytes: number;
}

export class ProgressMeter {
  item = '';
  private readonly started = Date.now();
  private lastEmit = 0;
  private done: MeterCounters = { readBytes: 0, zeroBytes: 0, dedupBytes: 0, storedBytes: 0 };

  constructor(
    private readonly phase: TransferProgress['phase'],
    private readonly totalBytes: number,
    private readonly listener?: ProgressListener,
  ) {}

  /** Counters of the item in progress (cumulative within the item). */
  update(current: MeterCounters, force = false): void {
    if (!this.listener) return;
    const now = Date.now();
    if (!force && now - this.lastEmit < 250) return;
    this.lastEmit = now;
    this.listener({
      phase: this.phase,
      item: this.item,
      totalBytes: this.totalBytes,
      readBytes: this.done.readBytes + current.readBytes,
      writtenBytes: this.done.storedBytes + current.storedBytes,
      zeroBytes: this.done.zeroBytes + current.zeroBytes,
      dedupBytes: this.done.dedupBytes + current.dedupBytes,
      elapsedSeconds: (now - this.started) / 1000,
    });
  }

  completeItem(counters: MeterCounters): void {
    this.done = {
      readBytes: this.done.readBytes + counters.readBytes,
      zeroBytes: this.done.zeroBytes + counters.zeroBytes,
      dedupBytes: this.done.dedupBytes + counters.dedupBytes,
      storedBytes: this.done.storedBytes + counters.storedBytes,
    };
    this.update({ readBytes: 0, zeroBytes: 0, dedupBytes: 0, storedBytes: 0 }, true);
  }
}
