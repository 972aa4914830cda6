/**
 * Retention (datastore/prune-policy.ts) as proxmox-backup documents prune: keep-last keeps the N
 * newest; keep-hourly/-daily/-weekly/-monthly/-yearly each keep the newest version of up to N periods
 * not covered yet, in that order; ISO weeks; protected versions are always kept and count toward no
 * rule. And the datastore's lock files (datastore/locks.ts). Dates are built in local time, as the
 * policy reads them, so the tests hold in every time zone.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isColdvaultError } from '../../src/core/errors.js';
import { hasRetention, isoWeek, LockDir, selectPrune, type PruneCandidate, type PruneMark, type PruneOptions } from '../../src/datastore/index.js';

/** Local time, month 1-based. */
const at = (y: number, mo: number, d: number, h = 12, mi = 0): Date => new Date(y, mo - 1, d, h, mi);

function candidates(times: Date[], protectedVersions: number[] = []): PruneCandidate[] {
  return times.map((time, i) => ({ version: i + 1, time, protected: protectedVersions.includes(i + 1) }));
}

function kept(marks: Map<number, PruneMark>): number[] {
  return [...marks]
    .filter(([, m]) => m !== 'remove')
    .map(([v]) => v)
    .sort((a, b) => a - b);
}

const dayString = (d: Date): string => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;

describe('isoWeek', () => {
  it.each([
    [at(2021, 1, 3), '2020/53'], // Sunday: still the last week of 2020
    [at(2021, 1, 4), '2021/01'], // Monday
    [at(2026, 1, 1), '2026/01'], // Thursday: week 1 holds the first Thursday
    [at(2026, 12, 28), '2026/53'], // Monday; 2026 starts on a Thursday, so it has 53 weeks
    [at(2026, 12, 31), '2026/53'],
    [at(2027, 1, 1), '2026/53'], // Friday of the same week
    [at(2027, 1, 3), '2026/53'],
    [at(2027, 1, 4), '2027/01'],
    [at(2008, 12, 29), '2009/01'], // Monday of the week with 1 January 2009 (a Thursday)
    [at(2010, 1, 3), '2009/53'],
    [at(2024, 12, 30), '2025/01'],
    [at(2020, 2, 29, 23, 59), '2020/09'],
  ])('%s is in ISO week %s', (date, week) => {
    expect(isoWeek(date)).toBe(week);
  });

  it('is the same for the seven days Monday..Sunday and changes from Sunday to Monday (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200 * 52 }), fc.integer({ min: 0, max: 23 }), (weeks, hour) => {
        // 1990-01-01 was a Monday
        const monday = new Date(1990, 0, 1 + weeks * 7, hour);
        const week = isoWeek(monday);
        for (let i = 1; i < 7; i++) expect(isoWeek(new Date(1990, 0, 1 + weeks * 7 + i, hour))).toBe(week);
        expect(isoWeek(new Date(1990, 0, 1 + weeks * 7 + 7, hour))).not.toBe(week);
        // the ISO year is the year of that week's Thursday
        expect(week.slice(0, 4)).toBe(String(new Date(1990, 0, 1 + weeks * 7 + 3).getFullYear()));
      }),
      { numRuns: 300 },
    );
  });
});

describe('selectPrune, hand-checked scenarios', () => {
  it('keep-last N keeps the N newest and removes the rest', () => {
    const times = [1, 2, 3, 4, 5].map((d) => at(2026, 11, d));
    expect(kept(selectPrune(candidates(times), { keepLast: 2 }))).toEqual([4, 5]);
    expect(kept(selectPrune(candidates(times), { keepLast: 1 }))).toEqual([5]);
    expect(kept(selectPrune(candidates(times), { keepLast: 9 }))).toEqual([1, 2, 3, 4, 5]);
  });

  it('orders by time, not by version number', () => {
    const times = [at(2026, 11, 5), at(2026, 11, 1), at(2026, 11, 3)];
    expect(kept(selectPrune(candidates(times), { keepLast: 1 }))).toEqual([1]);
    expect(kept(selectPrune(candidates(times), { keepLast: 2 }))).toEqual([1, 3]);
  });

  it('daily backups over 3 ISO weeks, keep-daily=3 keep-weekly=2: the 3 newest days, then the newest of each of the 2 weeks before', () => {
    // 2026-11-02 (Monday, week 45) .. 2026-11-22 (Sunday, week 47), one backup a day at 02:00
    const times = Array.from({ length: 21 }, (_, i) => at(2026, 11, 2 + i, 2));
    const marks = selectPrune(candidates(times), { keepDaily: 3, keepWeekly: 2 });
    expect(kept(marks).map((v) => dayString(times[v - 1] as Date))).toEqual(['2026-11-08', '2026-11-15', '2026-11-20', '2026-11-21', '2026-11-22']);
    expect([...marks.values()].filter((m) => m === 'remove')).toHaveLength(16);
  });

  it('several backups a day with keep-daily=2: the newest of each of the 2 newest days', () => {
    const times = [at(2026, 11, 20, 1), at(2026, 11, 20, 13), at(2026, 11, 21, 1), at(2026, 11, 21, 13), at(2026, 11, 21, 23, 59), at(2026, 11, 22, 0, 1)];
    expect(kept(selectPrune(candidates(times), { keepDaily: 2 }))).toEqual([5, 6]);
    expect(kept(selectPrune(candidates(times), { keepDaily: 3 }))).toEqual([2, 5, 6]);
  });

  it('keep-hourly: the newest backup of each of the N newest hours', () => {
    const times = [at(2026, 11, 27, 10, 5), at(2026, 11, 27, 10, 40), at(2026, 11, 27, 11, 10), at(2026, 11, 27, 11, 50), at(2026, 11, 27, 12, 30)];
    expect(kept(selectPrune(candidates(times), { keepHourly: 2 }))).toEqual([4, 5]);
    expect(kept(selectPrune(candidates(times), { keepHourly: 3 }))).toEqual([2, 4, 5]);
  });

  it('keep-weekly across the 2026/2027 boundary: 28 Dec 2026 .. 3 Jan 2027 are one ISO week', () => {
    const times = [at(2026, 12, 21), at(2026, 12, 28), at(2026, 12, 31), at(2027, 1, 1), at(2027, 1, 3), at(2027, 1, 4)];
    expect(kept(selectPrune(candidates(times), { keepWeekly: 2 }))).toEqual([5, 6]);
    expect(kept(selectPrune(candidates(times), { keepWeekly: 3 }))).toEqual([1, 5, 6]);
  });

  it('keep-last=1 keep-monthly=2 keep-yearly=1 across a year end', () => {
    const times = [at(2025, 6, 1), at(2026, 11, 15), at(2026, 11, 30), at(2026, 12, 15), at(2026, 12, 31), at(2027, 1, 1)];
    // last: 2027-01-01; monthly (2027/01 covered): 2026-12-31, 2026-11-30; yearly (2027, 2026 covered): 2025-06-01
    expect(kept(selectPrune(candidates(times), { keepLast: 1, keepMonthly: 2, keepYearly: 1 }))).toEqual([1, 3, 5, 6]);
    expect(kept(selectPrune(candidates(times), { keepLast: 1, keepMonthly: 2 }))).toEqual([3, 5, 6]);
  });

  it('keep-yearly keeps the newest of each year', () => {
    const times = [at(2023, 3, 1), at(2023, 12, 31, 23, 59), at(2024, 1, 1, 0, 1), at(2024, 6, 1), at(2025, 2, 1)];
    expect(kept(selectPrune(candidates(times), { keepYearly: 3 }))).toEqual([2, 4, 5]);
  });

  it('a protected version is never removed and counts toward no rule', () => {
    const times = [1, 2, 3, 4, 5].map((d) => at(2026, 11, d));
    const marks = selectPrune(candidates(times, [5, 2]), { keepLast: 1 });
    expect(marks.get(5)).toBe('protected');
    expect(marks.get(2)).toBe('protected');
    expect(marks.get(4)).toBe('keep'); // the newest unprotected one: the protected 5 did not use up keep-last
    expect(marks.get(1)).toBe('remove');
    expect(marks.get(3)).toBe('remove');
    // a protected day does not cover its day for keep-daily
    const sameDay = [at(2026, 11, 1, 1), at(2026, 11, 1, 2)];
    expect(selectPrune(candidates(sameDay, [2]), { keepDaily: 1 }).get(1)).toBe('keep');
  });

  it('with no keep rule at all, everything is kept', () => {
    const times = [1, 2, 3].map((d) => at(2026, 11, d));
    for (const opts of [{}, { keepLast: 0, keepDaily: 0 }] as PruneOptions[]) {
      expect(hasRetention(opts)).toBe(false);
      expect(kept(selectPrune(candidates(times), opts))).toEqual([1, 2, 3]);
    }
  });
});

const RULES = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'] as const;

const options: fc.Arbitrary<PruneOptions> = fc.record(
  Object.fromEntries(RULES.map((r) => [r, fc.integer({ min: 0, max: 5 })])) as Record<(typeof RULES)[number], fc.Arbitrary<number>>,
  { requiredKeys: [] },
);

/** Versions 1..n with times that sometimes collide and span hours to years, some protected. */
const history: fc.Arbitrary<PruneCandidate[]> = fc
  .array(fc.record({ minutes: fc.integer({ min: 0, max: 3 * 366 * 24 * 60 }), protected: fc.boolean() }), { maxLength: 40 })
  .map((rows) => rows.map((r, i) => ({ version: i + 1, time: new Date(2025, 0, 1, 0, r.minutes), protected: r.protected && i % 3 === 0 })));

const newestFirst = (a: PruneCandidate, b: PruneCandidate): number => b.time.getTime() - a.time.getTime() || b.version - a.version;

describe('selectPrune, properties', () => {
  it('marks every candidate; protected ones as protected and only those', () => {
    fc.assert(
      fc.property(history, options, (list, opts) => {
        const marks = selectPrune(list, opts);
        expect(marks.size).toBe(list.length);
        for (const c of list) expect(marks.get(c.version) === 'protected').toBe(c.protected);
      }),
    );
  });

  it('keeps the newest unprotected version whenever any keep rule is above 0', () => {
    fc.assert(
      fc.property(history, options, (list, opts) => {
        fc.pre(hasRetention(opts));
        const newest = list.filter((c) => !c.protected).sort(newestFirst)[0];
        if (newest) expect(selectPrune(list, opts).get(newest.version)).toBe('keep');
      }),
    );
  });

  it('keeps at most the sum of the keep counts (besides protected versions)', () => {
    fc.assert(
      fc.property(history, options, (list, opts) => {
        fc.pre(hasRetention(opts));
        const keeps = [...selectPrune(list, opts).values()].filter((m) => m === 'keep').length;
        expect(keeps).toBeLessThanOrEqual(RULES.reduce((s, r) => s + (opts[r] ?? 0), 0));
      }),
    );
  });

  it('keep-last N alone keeps exactly the N newest unprotected versions', () => {
    fc.assert(
      fc.property(history, fc.integer({ min: 1, max: 10 }), (list, n) => {
        const marks = selectPrune(list, { keepLast: n });
        const want = list
          .filter((c) => !c.protected)
          .sort(newestFirst)
          .slice(0, n)
          .map((c) => c.version)
          .sort((a, b) => a - b);
        expect(
          [...marks]
            .filter(([, m]) => m === 'keep')
            .map(([v]) => v)
            .sort((a, b) => a - b),
        ).toEqual(want);
      }),
    );
  });

  it('keep-daily N alone keeps the newest version of each of the N newest days that have one', () => {
    fc.assert(
      fc.property(history, fc.integer({ min: 1, max: 10 }), (list, n) => {
        const byDay = new Map<string, PruneCandidate>();
        for (const c of list.filter((x) => !x.protected).sort(newestFirst)) if (!byDay.has(dayString(c.time))) byDay.set(dayString(c.time), c);
        const want = [...byDay.values()]
          .slice(0, n)
          .map((c) => c.version)
          .sort((a, b) => a - b);
        const marks = selectPrune(list, { keepDaily: n });
        expect(
          [...marks]
            .filter(([, m]) => m === 'keep')
            .map(([v]) => v)
            .sort((a, b) => a - b),
        ).toEqual(want);
      }),
    );
  });

  it('does not depend on the order the candidates are given in', () => {
    fc.assert(
      fc.property(history, options, fc.integer(), (list, opts, seed) => {
        const shuffled = [...list].sort((a, b) => ((a.version * 7919 + seed) % 101) - ((b.version * 7919 + seed) % 101));
        expect(new Map([...selectPrune(shuffled, opts)].sort())).toEqual(new Map([...selectPrune(list, opts)].sort()));
      }),
    );
  });
});

describe('LockDir', () => {
  const dirs: string[] = [];
  const lockDir = (): LockDir => {
    const dir = mkdtempSync(join(tmpdir(), 'cv-locks-'));
    dirs.push(dir);
    return new LockDir(join(dir, 'locks'));
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  /** The pid of a process that has exited. */
  function deadPid(): number {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(child.stdout);
    expect(pid).toBeGreaterThan(0);
    return pid;
  }

  it('refuses a second holder with LOCKED, naming the lock and the holder; after release it can be taken again', async () => {
    const locks = lockDir();
    const held = await locks.acquire('guest-101', 'backup of guest 101');
    const err = await locks.acquire('guest-101', 'another backup').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isColdvaultError(err, 'LOCKED')).toBe(true);
    expect((err as Error).message).toContain('guest-101');
    expect((err as Error).message).toContain('backup of guest 101');
    expect((err as Error).message).toContain(`pid ${process.pid}`);
    // another lock name is independent
    const other = await locks.acquire('guest-102', 'backup of guest 102');
    await held.release();
    expect(existsSync(held.path)).toBe(false);
    const again = await locks.acquire('guest-101', 'another backup');
    await again.release();
    await other.release();
  });

  it('waits up to waitMs for the holder to let go', async () => {
    const locks = lockDir();
    const held = await locks.acquire('gc', 'gc');
    setTimeout(() => void held.release(), 150);
    const started = Date.now();
    const second = await locks.acquire('gc', 'gc 2', 5000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(JSON.parse(readFileSync(second.path, 'utf8'))).toMatchObject({ pid: process.pid, purpose: 'gc 2' });
    await second.release();
    const held2 = await locks.acquire('gc', 'gc');
    const err = await locks.acquire('gc', 'gc 3', 200).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isColdvaultError(err, 'LOCKED')).toBe(true);
    await held2.release();
  });

  it('takes over the lock file of a dead process on this host', async () => {
    const locks = lockDir();
    const first = await locks.acquire('guest-101', 'x');
    await first.release();
    const pid = deadPid();
    writeFileSync(first.path, JSON.stringify({ pid, host: hostname(), start: Date.now() - 60_000, purpose: 'a crashed backup' }));
    const lock = await locks.acquire('guest-101', 'backup of guest 101');
    expect(JSON.parse(readFileSync(lock.path, 'utf8'))).toMatchObject({ pid: process.pid, purpose: 'backup of guest 101' });
    await lock.release();
  });

  it('does not take over a lock of another host (its pid cannot be checked here)', async () => {
    const locks = lockDir();
    const first = await locks.acquire('guest-101', 'x');
    await first.release();
    writeFileSync(first.path, JSON.stringify({ pid: deadPid(), host: `${hostname()}-other`, start: Date.now(), purpose: 'a backup elsewhere' }));
    const err = await locks.acquire('guest-101', 'mine').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isColdvaultError(err, 'LOCKED')).toBe(true);
  });

  it('takes over an empty lock file at once where the filesystem has hard links (left by a crash or a pulled disk)', async () => {
    const locks = lockDir();
    const first = await locks.acquire('gc', 'x');
    await first.release();
    writeFileSync(first.path, '');
    const lock = await locks.acquire('gc', 'mine');
    expect(JSON.parse(readFileSync(lock.path, 'utf8'))).toMatchObject({ pid: process.pid, purpose: 'mine' });
    await lock.release();
    expect(readdirSync(locks.dir).filter((n) => n.includes('link-probe'))).toEqual([]);
  });

  it('lists live writers and drops the registrations of dead ones', async () => {
    const locks = lockDir();
    const w = await locks.registerWriter('backup of guest 101');
    writeFileSync(join(locks.dir, 'writer-1-dead.json'), JSON.stringify({ pid: deadPid(), host: hostname(), start: 1, purpose: 'crashed' }));
    const live = await locks.liveWriters();
    expect(live.map((h) => h.purpose)).toEqual(['backup of guest 101']);
    expect(live[0]?.start).toBe(w.start);
    expect(existsSync(join(locks.dir, 'writer-1-dead.json'))).toBe(false);
    await w.release();
    expect(await locks.liveWriters()).toEqual([]);
  });
});
