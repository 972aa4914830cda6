/**
 * Making race windows happen on purpose, with the datastore's seams (src/core/seams.ts):
 * - ManualClock: the clock of the times garbage collection compares; a test moves it forward, so
 *   "this backup started ten seconds before gc" needs no sleeping.
 * - StepGate: a checkpoint function that parks an operation at chosen steps until the test lets it go.
 * - Interleaver: runs several operations (each with its own Datastore object, as separate processes
 *   would) one step at a time: it waits until every running operation is parked at a checkpoint or
 *   done, then releases one chosen by the test's choice sequence (fast-check generates and shrinks it).
 *   Between two checkpoints only one operation runs, so a choice sequence replays the same interleaving.
 */
import type { Checkpoint, Clock } from '../../src/core/seams.js';

export class ManualClock implements Clock {
  private offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  advance(ms: number): void {
    this.offset += ms;
  }
}

interface Parked {
  step: string;
  release: () => void;
}

/** Parks the operation that uses `checkpoint` at the steps the test holds. */
export class StepGate {
  private readonly held = new Set<string>();
  private readonly arrivals = new Map<string, Array<(p: Parked) => void>>();
  private readonly parked = new Map<string, Parked>();

  readonly checkpoint: Checkpoint = async (step) => {
    if (!this.held.has(step)) return;
    this.held.delete(step);
    await new Promise<void>((release) => {
      const p = { step, release };
      this.parked.set(step, p);
      for (const notify of this.arrivals.get(step) ?? []) notify(p);
      this.arrivals.delete(step);
    });
  };

  /** The next arrival at `step` parks there. */
  hold(step: string): this {
    this.held.add(step);
    return this;
  }

  /** Resolves once the operation is parked at `step`. */
  reached(step: string): Promise<void> {
    if (this.parked.has(step)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.arrivals.get(step) ?? [];
      list.push(() => resolve());
      this.arrivals.set(step, list);
    });
  }

  release(step: string): void {
    const p = this.parked.get(step);
    if (!p) throw new Error(`nothing is parked at '${step}'`);
    this.parked.delete(step);
    p.release();
  }
}

type ActorState = { kind: 'running' } | { kind: 'parked'; step: string; release: () => void } | { kind: 'done' };

export interface Actor<T = unknown> {
  readonly name: string;
  /** the checkpoint function to give this operation's Datastore */
  readonly checkpoint: Checkpoint;
  readonly result: Promise<{ ok: true; value: T } | { ok: false; error: unknown }>;
  readonly steps: string[];
}

export class Interleaver {
  private readonly actors: Array<{ name: string; state: ActorState; steps: string[] }> = [];
  private changed: () => void = () => undefined;
  readonly trace: string[] = [];

  /** Adds an operation; `start` receives the checkpoint for its Datastore and runs it to the end. */
  add<T>(name: string, start: (checkpoint: Checkpoint) => Promise<T>): Actor<T> {
    const entry = { name, state: { kind: 'running' } as ActorState, steps: [] as string[] };
    const checkpoint: Checkpoint = (step) =>
      new Promise<void>((release) => {
        entry.steps.push(step);
        entry.state = { kind: 'parked', step, release };
        this.changed();
      });
    let begin!: () => void;
    const begun = new Promise<void>((r) => {
      begin = r;
    });
    entry.state = { kind: 'parked', step: 'start', release: begin };
    const result = begun
      .then(() => start(checkpoint))
      .then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      )
      .finally(() => {
        entry.state = { kind: 'done' };
        this.changed();
      });
    this.actors.push(entry);
    return { name, checkpoint, result, steps: entry.steps };
  }

  /**
   * Runs every operation to its end, one step at a time. `choose(n)` picks which of the n parked
   * operations goes next; `between()` runs before each release (the test moves its clock there).
   */
  async run(choose: (n: number) => number, between: () => void = () => undefined): Promise<void> {
    for (;;) {
      await this.quiet();
      const parked = this.actors.filter((a) => a.state.kind === 'parked');
      if (parked.length === 0) return;
      const next = parked[choose(parked.length) % parked.length];
      if (!next || next.state.kind !== 'parked') throw new Error('interleaver: no parked operation to release');
      between();
      this.trace.push(`${next.name}@${next.state.step}`);
      const release = next.state.release;
      next.state = { kind: 'running' };
      release();
    }
  }

  /** Resolves when no operation is running (each is parked or done). */
  private quiet(): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.actors.every((a) => a.state.kind !== 'running')) resolve();
      };
      this.changed = check;
      check();
    });
  }
}
