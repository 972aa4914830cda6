/**
 * GET /api/v1/overview on a real store with two weeks of history made by the real CLI on past days
 * (test/helpers/overview-history.ts: a shifted clock, TEST ONLY), in Europe/Zurich time: the answer
 * matches its OpenAPI schema (Ajv); every guest has the right last result and flags (101 fine, 102
 * failed last night, 103 overdue, 104 in no job); the datastore's usage has one point per day of
 * history, and its "full on" day is the one the test computes itself (least squares, written apart);
 * a store whose usage stays flat has none; the run history has every run of each job, `?days` narrows
 * it; audit tokens may read it, a backup token may not.
 *
 * The datastore is a small tmpfs (root), so the trend reaches its capacity within weeks. Needs the build.
 */
process.env.TZ = 'Europe/Zurich';

import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagePath, writeGuest, writeImage, writeServeConfig } from '../helpers/fixtures.js';
import { cliAt, daysBefore, expectedForecast, GUESTS, localDay, makeHistory } from '../helpers/overview-history.js';
import { mountFs, type MountedFs } from '../helpers/snapshot-fs.js';
import { makeServerLab, type ServerLab } from './helpers-server.js';

const DAYS = 14; // two weeks of history: enough for the forecast (at least 7 days) and every flag
let lab: ServerLab;
let tmpfs: MountedFs | undefined;
let now: Date;
let flatDir: string;

interface Guest {
  id: string;
  covered: boolean;
  coveringJobs: string[];
  lastBackup: { result: string; job: string | null; durationMs: number | null; error: string | null; time: string } | null;
  versions: number;
  daysSinceGood: number | null;
  nextRun: { time: string; job: string } | null;
  flags: string[];
}
interface Store {
  name: string;
  usage: Array<{ day: string; bytes: number }>;
  fullOn: string | null;
  trendBytesPerDay: number | null;
  freeBytes: number;
  dedupFactor: number;
}
interface OverviewJson {
  guests: Guest[];
  datastores: Store[];
  history: { jobs: Array<{ id: string; runs: Array<{ result: string; durationMs: number; bytesPerSecond: number }> }> };
}

beforeAll(async () => {
  lab = await makeServerLab({ prepare: (l) => (tmpfs = mountFs('tmpfs', l.root, l.storeDir, 160)) });
  const configPath = writeServeConfig(lab, 'testnode', 'state');
  now = new Date();
  await makeHistory(lab, configPath, now, DAYS);
  // a second store whose usage stays flat: guest 105's unchanged disk, backed up on 8 days
  flatDir = join(lab.root, 'flat');
  lab.config.datastores.flat = flatDir;
  writeGuest(lab, '105', [{ key: 'scsi0', file: 'vm-105-disk-0.raw' }]);
  writeImage(imagePath(lab, '105', 'vm-105-disk-0.raw'), ['text'], 105);
  expect((await cliAt(now, ['datastore', 'init', flatDir])).code).toBe(0);
  for (let d = 7; d >= 0; d--) {
    const r = await cliAt(daysBefore(now, d, 30), [
      'backup',
      '105',
      '--store',
      flatDir,
      '--guests-dir',
      lab.guestsDir,
      '--storage',
      `local=${lab.storageDir}`,
      '--snapshot',
      'off',
    ]);
    expect(r.code, r.stderr).toBe(0);
  }
}, 300_000);

afterAll(async () => {
  tmpfs?.cleanup(); // before the lab's folder is removed
  await lab?.close();
});

async function overview(query = ''): Promise<OverviewJson> {
  const res = await lab.api('GET', `/api/v1/overview${query}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<OverviewJson>();
}

describe('GET /api/v1/overview', () => {
  it('answers as its OpenAPI schema says', async () => {
    const doc = (await lab.api('GET', '/api/v1/openapi.json')).json<{ paths: Record<string, { get: Record<string, unknown> }> }>();
    const op = doc.paths['/api/v1/overview']?.get as { responses: Record<string, { content: Record<string, { schema: object }> }>; 'x-roles': string[] };
    expect(op['x-roles']).toEqual(['admin', 'operator', 'audit']);
    const validate = new Ajv({ strict: false }).compile(op.responses['200']?.content['application/json']?.schema ?? {});
    const body = await overview();
    expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
    expect((await lab.api('GET', '/api/v1/overview?days=0')).statusCode).toBe(400);
    expect((await lab.api('GET', '/api/v1/overview?color=red')).statusCode).toBe(400);
  });

  it('every guest with its last result and flags', async () => {
    const { guests } = await overview();
    const row = (id: string) => guests.find((g) => g.id === id) as Guest;
    expect(guests.map((g) => g.id)).toEqual(['101', '102', '103', '104', '105']);
    expect(row(GUESTS.ok)).toMatchObject({ covered: true, coveringJobs: ['nightly'], versions: DAYS, daysSinceGood: 0, flags: [] });
    expect(row(GUESTS.ok).lastBackup).toMatchObject({ result: 'ok', job: 'nightly', error: null });
    expect(row(GUESTS.ok).lastBackup?.durationMs).toBeGreaterThan(0);
    // the next run: the jobs' time today or tomorrow, 6 h from when they were made
    const next = new Date(row(GUESTS.ok).nextRun?.time ?? 0).getTime();
    expect(next - now.getTime()).toBeGreaterThan(5.9 * 3_600_000);
    expect(next - now.getTime()).toBeLessThan(6.1 * 3_600_000);
    expect(row(GUESTS.failed).flags).toEqual(['failed', 'overdue']);
    expect(row(GUESTS.failed).lastBackup).toMatchObject({ result: 'failed', job: 'nightly' });
    expect(row(GUESTS.failed).lastBackup?.error).toMatch(/vm-102-disk-0\.raw/);
    expect(row(GUESTS.overdue)).toMatchObject({ flags: ['overdue'], daysSinceGood: 4, versions: DAYS - 4, lastBackup: { result: 'ok', job: 'offsite' } });
    expect(row(GUESTS.uncovered)).toMatchObject({
      covered: false,
      flags: ['not-backed-up'],
      versions: 2,
      nextRun: null,
      lastBackup: { result: 'ok', job: null },
    });
    expect(row('105')).toMatchObject({ covered: false, flags: ['not-backed-up'], versions: 8 });
  });

  it("usage: one point per day of history; full on: the day the test computes from the store's versions", async () => {
    const { datastores } = await overview();
    const main = datastores.find((d) => d.name === 'main') as Store;
    const versions = (await lab.api('GET', '/api/v1/backups?store=main')).json<Array<{ time: string; storedBytes: number }>>();
    const s = statfsSync(lab.storeDir);
    expect(main.freeBytes).toBe(s.bavail * s.bsize); // nothing wrote in between
    const expected = expectedForecast(versions, main.freeBytes, now);
    expect([DAYS, DAYS + 1]).toContain(expected.days); // DAYS + 1 when run in the first 90 minutes after midnight
    expect(main.usage).toHaveLength(expected.days);
    expect(main.usage.map((p) => p.day)).toEqual(expected.dayList);
    expect(main.usage.at(-1)?.day).toBe(localDay(now));
    expect(main.usage.at(-1)?.bytes).toBe(versions.reduce((a, v) => a + v.storedBytes, 0));
    expect(main.trendBytesPerDay).toBeGreaterThan(0);
    expect(expected.fullOn).not.toBeNull();
    expect(main.fullOn).toBe(expected.fullOn);
    expect(main.dedupFactor).toBeGreaterThan(1);
    const flat = datastores.find((d) => d.name === 'flat') as Store;
    expect([8, 9]).toContain(flat.usage.length);
    expect(flat).toMatchObject({ fullOn: null, trendBytesPerDay: 0 });
  });

  it('run history: every run of each job; ?days narrows it', async () => {
    const { history } = await overview();
    const runs = (id: string) => history.jobs.find((j) => j.id === id)?.runs ?? [];
    expect(runs('nightly').map((r) => r.result)).toEqual([...Array<string>(DAYS - 1).fill('ok'), 'failed']);
    expect(runs('offsite')).toHaveLength(DAYS - 4);
    expect(runs('nightly').every((r) => r.durationMs > 0 && r.bytesPerSecond > 0)).toBe(true);
    const week = await overview('?days=7');
    expect(week.history.jobs.find((j) => j.id === 'nightly')?.runs).toHaveLength(7);
  });

  it('an audit token reads it; a backup token may not', async () => {
    const audit = lab.tokens.create('watcher', { role: 'audit' }).token;
    const backup = lab.tokens.create('pusher', { role: 'backup', store: 'main' }).token;
    expect((await lab.api('GET', '/api/v1/overview', undefined, { authorization: `Bearer ${audit}` })).statusCode).toBe(200);
    expect((await lab.api('GET', '/api/v1/overview', undefined, { authorization: `Bearer ${backup}` })).statusCode).toBe(403);
  });
});
