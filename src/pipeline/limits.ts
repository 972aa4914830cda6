/**
 * Bounded concurrency helpers. `Window` is a counting semaphore: a producer acquires a slot before it
 * produces (reads a chunk), so a slow consumer (a slow disk) slows the reader instead of filling
 * memory. `Tasks` tracks every promise a flow starts, so that none is left running: on failure the
 * flow waits for all of them (allSettled) and then rethrows the first error.
 */
export class Window {
  private free: number;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly size: number) {
    this.free = size;
  }

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
}

export class Tasks {
  private readonly running = new Set<Promise<void>>();
  private firstError: unknown;
  private failed = false;

  /** Starts a task; its failure is remembered (the first one wins) and seen by `check`. */
  start(task: () => Promise<void>): void {
    const p = task().catch((err: unknown) => {
      if (!this.failed) {
        this.failed = true;
        this.firstError = err;
      }
    });
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  /** Throws the first failure so far, so that a producer stops producing. */
  check(): void {
    if (this.failed) throw this.firstError;
  }

  /** Waits for every task, then throws the first failure, if any. */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
    this.check();
  }
}
