/**
 * Seams for testing concurrency on real stores: a clock and checkpoints.
 *
 * - `Clock`: where the datastore takes the times that garbage collection compares (a writer's start,
 *   gc's start, the time a chunk is written or touched). Production uses the system clock; a test of
 *   interleavings uses a clock it moves forward itself, so that "seconds later" happens on purpose.
 * - `Checkpoint`: called by long operations between their steps (gc between marking and sweeping, a
 *   backup before it publishes, prune before it removes a version, ...) with the step's name. In
 *   production there is none and nothing waits; a test passes one that parks the operation until the
 *   test lets it go on, which makes a race window happen deterministically.
 */
export interface Clock {
  /** milliseconds since the epoch, as Date.now() */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export type Checkpoint = (step: string) => Promise<void>;

export interface Seams {
  clock?: Clock;
  checkpoint?: Checkpoint;
}
