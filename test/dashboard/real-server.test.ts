/**
 * `coldvault dashboard` in an 80x24 tmux pane against the REAL `coldvault serve` (built CLI, config in
 * a temp dir, driver `none`, a token from `coldvault token create`), while a real backup runs.
 *
 * Job `nightly` (guest 101, keep 3) runs once on a small disk, so the rotation table has a version;
 * then the disk is replaced by a big one of new data (IMAGE below) and the job runs again through the
 * API, with the dashboard started at once. That second run takes several seconds of real work
 * (SHA-256 and zstd of every chunk, durable writes), no sleeps: while it runs the screen must show a
 * non-zero read rate in the chart's label, the gauge's percentage, the rotation row `101 main 1/3`,
 * the datastore's usage and the running task's log; after it ends, `2/3`; `g` shows the guests' backup
 * state (101: last backup ok, no flag); then `q` exits 0.
 *
 * test/dashboard/tmux.test.ts keeps the stand-in server (fake-api.ts) for what the real one cannot
 * easily produce (the API going away, a refused token, fixed figures).
 *
 * Runs the built CLI (bin/coldvault.js -> dist/): `npm run build` first.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, writeImage, type Region } from '../helpers/fixtures.js';
import { startRealServer, Tmux, waitTask, type RealServer } from './real-server-helpers.js';

/**
 * The second run's disk: 1 GiB (256 regions of 4 MiB) of new data, half log-like text, half random;
 * ~16 s to generate. With the config's zstd level 9 the text costs zstd time and the random SHA-256
 * time: on 2 cores the run takes ~6 s (~180 MiB/s), the dashboard's first full frame comes after ~1 s.
 */
const IMAGE: Region[] = Array.from({ length: 256 }, (_, i) => (i % 2 === 0 ? 'text' : 'random'));
const ZSTD_LEVEL = 9;
const JOB = 'nightly';

let server: RealServer | undefined;
let tmux: Tmux | undefined;

beforeAll(async () => {
  if (!existsSync(join(REPO, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  server = await startRealServer({ zstdLevel: ZSTD_LEVEL, image: (path) => writeImage(path, ['text', 'random', 'text', 'random'], 1) });
  tmux = new Tmux(server.lab.root);
  await server.api('POST', '/api/v1/jobs', { id: JOB, store: 'main', vmid: ['101'], keep: 3, compress: 'zstd' });
  const { taskId } = await server.api<{ taskId: string }>('POST', `/api/v1/jobs/${JOB}/run`);
  expect((await waitTask(server, taskId)).status).toBe('ok');
  // the disk changed: new data, so the next run reads, hashes, compresses and writes all of it
  writeImage(join(server.lab.storageDir, 'images', '101', 'vm-101-disk-0.raw'), IMAGE, 2);
});

afterAll(async () => {
  tmux?.kill();
  const code = await server?.stop();
  server?.lab.cleanup();
  if (server) expect(code).toBe(0);
});

describe('coldvault dashboard against the real coldvault serve', () => {
  it('follows a running backup: read MiB/s, gauge %, rotation 1/3 then 2/3, datastore usage, task log; q quits', async () => {
    const s = server!;
    const mux = tmux!;
    const { taskId } = await s.api<{ taskId: string }>('POST', `/api/v1/jobs/${JOB}/run`);
    const session = 'real';
    const exitFile = join(s.lab.root, 'dashboard.exit');
    mux.startDashboard(session, ['--url', s.url, '--token', s.token, '--interval', '0.25'], exitFile);

    // one frame, taken while the backup runs, with everything on it
    const screen = await mux.waitFor(
      session,
      (sc) => {
        const read = Number(/Throughput MiB\/s\s+read (\d+\.\d)\s+write \d+\.\d/.exec(sc)?.[1]);
        return read > 0 && /│\s+\d{1,3}%\s+│/.test(sc) && /^│101\s+main\s+1\/3\s/m.test(sc) && sc.includes(`log ${taskId}`) && sc;
      },
      30_000,
    );
    const task = await s.api<{ status: string }>('GET', `/api/v1/tasks/${taskId}`);
    expect(task.status, 'the frame was taken while the backup ran').toBe('running');

    const lines = screen.split('\n');
    expect(lines).toHaveLength(24);
    expect(lines.every((l) => l.length <= 80)).toBe(true);

    // the chart: non-zero read rate in its label, a drawn line in the left 48 columns
    const rates = /Throughput MiB\/s\s+read (\d+\.\d)\s+write (\d+\.\d)/.exec(screen)!;
    expect(Number(rates[1])).toBeGreaterThan(0);
    const chart = lines
      .slice(0, 10)
      .map((l) => l.slice(0, 48))
      .join('\n');
    expect(chart).toMatch(/[⠁-⣿]/);

    // the gauge: the running job and disk, bytes of the 1 GiB disk, a percentage
    const right = lines
      .slice(0, 6)
      .map((l) => l.slice(48))
      .join('\n');
    expect(right).toContain(`backup ${JOB} scsi0`);
    expect(right).toMatch(/\d+(\.\d)? (B|KiB|MiB|GiB) of 1\.0 GiB/);
    const percent = Number(/│\s+(\d{1,3})%\s+│/.exec(right)?.[1]);
    expect(percent).toBeGreaterThanOrEqual(0);
    expect(percent).toBeLessThan(100);

    // the datastore's usage, from the real statfs of the temp dir
    expect(screen).toMatch(/main \[#*\.*\]\s+\d{1,3}%/);
    expect(screen).toMatch(/used \d+(\.\d)? [KMGT]iB\s+free \d+(\.\d)? [KMGT]iB/);

    // the rotation table: guest 101 in store main, 1 version kept of keep 3
    expect(screen).toMatch(/Guest\s+Store\s+Kept\s+Oldest\s+Newest\s+Logical\s+Stored\s+Dedup/);
    expect(screen).toMatch(/^│101\s+main\s+1\/3\s+\d\d-\d\d-\d\d \d\d:\d\d\s+\d\d-\d\d-\d\d \d\d:\d\d\s+16\.0 MiB\s+\S+ \S+\s+\d+\.\dx/m);

    // the log tail: the running task's lines
    const log = lines.slice(14).join('\n');
    expect(log).toContain(`log ${taskId}`);
    expect(log).toMatch(/\d\d:\d\d:\d\d .*(now save file|include disk|Starting Backup of VM 101)/);

    // the gauge moves on with the backup
    await mux.waitFor(session, (sc) => {
      const gauge = sc
        .split('\n')
        .slice(0, 6)
        .map((l) => l.slice(48))
        .join('\n');
      return gauge.includes(`backup ${JOB} scsi0`) && Number(/│\s+(\d{1,3})%\s+│/.exec(gauge)?.[1]) > percent;
    });

    // the backup ends: the second version appears; the log shows the task's end
    const done = await waitTask(s, taskId);
    expect(done.status).toBe('ok');
    const after = await mux.waitFor(session, (sc) => /^│101\s+main\s+2\/3\s/m.test(sc) && sc);
    expect(after).toMatch(/^│101\s+main\s+2\/3\s.*\s1\.0 GiB\s/m);
    await mux.waitFor(session, (sc) => sc.includes('Backup job finished successfully'));

    // g: the guests' backup state from GET /api/v1/overview: 101's last backup ok, no flag
    mux.run('send-keys', '-t', session, 'g');
    const guests = await mux.waitFor(session, (sc) => /^│101\s+test-101\s+ok\s+\d\d-\d\d-\d\d \d\d:\d\d\s+-\s+-\s*│/m.test(sc) && sc);
    expect(guests).toMatch(/guests {2}all fine {2}\(q quits, g rotation\)/);

    expect(await mux.quit(session, exitFile)).toBe('0');
  });
});
