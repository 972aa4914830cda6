/**
 * The downtime log line (core/downtime.ts) and the clock a guest run measures it with
 * (jobs/downtime-clock.ts). The clock is driven by a step counter the test advances, not by real
 * time: what is checked is which spans count, not how fast anything is.
 */
import { describe, expect, it } from 'vitest';
import { createTaskLog, formatDowntime } from '../../src/core/index.js';
import { DowntimeClock } from '../../src/jobs/downtime-clock.js';

/** A clock whose time only moves when the test says so. */
function steppedClock(): { clock: DowntimeClock; advance: (ms: number) => void } {
  let now = 1_000;
  return { clock: new DowntimeClock(() => now), advance: (ms) => (now += ms) };
}

const stepping = (advance: (ms: number) => void, ms: number) => async (): Promise<void> => advance(ms);
const failing = (advance: (ms: number) => void, ms: number) => async (): Promise<void> => {
  advance(ms);
  throw new Error('did not work');
};

describe('the downtime log line', () => {
  it('reads like the issue: vzdump-style total, seconds per step', () => {
    expect(formatDowntime('101', { offMs: 14_120, shutdownMs: 11_200, snapshotMs: 20, startMs: 2_900 })).toBe(
      'guest 101 was off for 00:00:14 (shutdown 11.2 s, snapshot 0.02 s, start 2.9 s)',
    );
  });

  it('hours and minutes in the total; two decimals below one second, one from there on', () => {
    expect(formatDowntime('2001', { offMs: 3_725_400, shutdownMs: 999, snapshotMs: 0, startMs: 61_250 })).toBe(
      'guest 2001 was off for 01:02:05 (shutdown 1.00 s, snapshot 0.00 s, start 61.3 s)',
    );
  });
});

describe('DowntimeClock', () => {
  it('the guest is off from the shutdown request to the started start command; the steps are its parts', async () => {
    const { clock, advance } = steppedClock();
    await clock.time('shutdown', stepping(advance, 11_200));
    expect(clock.downtime()).toBeUndefined(); // still off
    advance(500); // a hook, the still-stopped check
    await clock.time('snapshot', stepping(advance, 20));
    advance(400);
    await clock.time('start', stepping(advance, 2_900));
    advance(10_000); // after the start: the guest runs again, this is not downtime
    expect(clock.downtime()).toEqual({ offMs: 15_020, shutdownMs: 11_200, snapshotMs: 20, startMs: 2_900 });
    expect(clock.offMs()).toBe(15_020);
  });

  it('without snapshots the snapshot part is 0 and the time off includes the read', async () => {
    const { clock, advance } = steppedClock();
    await clock.time('shutdown', stepping(advance, 3_000));
    advance(60_000); // the disks are read while the guest is off
    await clock.time('start', stepping(advance, 2_000));
    expect(clock.downtime()).toEqual({ offMs: 65_000, shutdownMs: 3_000, snapshotMs: 0, startMs: 2_000 });
  });

  it('a shutdown that timed out and a hard stop are one shutdown step', async () => {
    const { clock, advance } = steppedClock();
    await expect(clock.time('shutdown', failing(advance, 180_000))).rejects.toThrow('did not work');
    await clock.time('shutdown', stepping(advance, 300));
    await clock.time('start', stepping(advance, 1_000));
    expect(clock.downtime()).toMatchObject({ offMs: 181_300, shutdownMs: 180_300, startMs: 1_000 });
  });

  it('no downtime while the start failed; a retried start counts both tries', async () => {
    const { clock, advance } = steppedClock();
    await clock.time('shutdown', stepping(advance, 1_000));
    await expect(clock.time('start', failing(advance, 500))).rejects.toThrow();
    expect(clock.downtime()).toBeUndefined();
    await clock.time('start', stepping(advance, 700));
    expect(clock.downtime()).toMatchObject({ offMs: 2_200, startMs: 1_200 });
  });

  it('no downtime for a guest coldvault did not shut down (started only: left off by an interrupted run)', async () => {
    const { clock, advance } = steppedClock();
    await clock.time('start', stepping(advance, 700));
    expect(clock.downtime()).toBeUndefined();
    expect(clock.offMs()).toBeUndefined();
  });

  it('logs the line at the end of the run only when nobody reported it', async () => {
    const { clock, advance } = steppedClock();
    const log = createTaskLog();
    clock.logUnreported('101', log); // not off yet: nothing
    await clock.time('shutdown', stepping(advance, 1_000));
    expect(clock.report()).toBeUndefined(); // asked while still off: not reported
    await clock.time('start', stepping(advance, 2_000));
    clock.logUnreported('101', log);
    clock.logUnreported('101', log); // once
    expect(log.lines.map((l) => l.message)).toEqual(['guest 101 was off for 00:00:03 (shutdown 1.0 s, snapshot 0.00 s, start 2.0 s)']);

    const reported = steppedClock();
    const quiet = createTaskLog();
    await reported.clock.time('shutdown', stepping(reported.advance, 1_000));
    await reported.clock.time('start', stepping(reported.advance, 1_000));
    expect(reported.clock.report()).toMatchObject({ offMs: 2_000 }); // the pipeline wrote it down
    reported.clock.logUnreported('101', quiet);
    expect(quiet.lines).toEqual([]);
  });
});
