/**
 * `coldvault snapshots [--json]` (the built CLI) lists the base snapshots a changed-extent nightly
 * keeps, found in the storage's snapshot folder, with what each costs: the bytes only the base still
 * holds, which are the blocks the guest rewrote since the base was made (FIEMAP on a real XFS with
 * reflink, loop device). A base whose record is damaged is listed with the reason it is not used.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerPool } from '../../dist/pipeline/index.js';
import { cli, regionBytes } from '../helpers/fixtures.js';
import { CHUNK, NightlyLab } from './nightly-lab.js';
import { ReflinkFs } from './reflink-lab.js';

let fs: ReflinkFs;
let pool: WorkerPool;
beforeAll(() => {
  fs = ReflinkFs.create(1024, 'cv-snapshots-');
  pool = new WorkerPool(2);
});
afterAll(async () => {
  await pool?.close();
  fs?.destroy();
});

interface Listed {
  guestId: string;
  disk: string;
  datastoreId: string;
  version?: number;
  snapshotPath: string;
  created: string;
  exclusiveBytes: number | null;
  problem?: string;
}

describe('coldvault snapshots', () => {
  it('lists each base with its version and the bytes the guest rewrote since', async () => {
    const lab = await NightlyLab.create(fs, pool, '401', 8 * CHUNK);
    for (let c = 0; c < 6; c++) lab.write(c * CHUNK, regionBytes('random', 40 + c));
    const first = await lab.nightly();
    const args = ['snapshots', '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storages.local as string}`];
    const listed = async (): Promise<Listed[]> => {
      const r = await cli([...args, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Listed[];
    };
    const [base] = await listed();
    expect(base).toMatchObject({ guestId: '401', disk: 'scsi0', version: first.version, snapshotPath: lab.base?.path, exclusiveBytes: 0 });
    expect(base?.problem).toBeUndefined();
    expect(base?.created).toBe(first.read.nextBase?.created);

    lab.write(CHUNK, regionBytes('random', 50)); // rewrites a whole chunk
    lab.write(3 * CHUNK + 8192, regionBytes('random', 51, 4096)); // and one block
    lab.write(7 * CHUNK, regionBytes('random', 52)); // fills a hole: the base holds nothing there
    expect((await listed())[0]?.exclusiveBytes).toBe(CHUNK + 4096);

    const human = await cli(args);
    expect(human.stdout).toMatch(
      new RegExp(`^GUEST +DISK +DATASTORE +VERSION +CREATED +ONLY IN BASE +PATH\\n401 +scsi0 +[0-9a-f-]+ +${first.version} +[0-9-]+ [0-9:]+ +4\\.00 MiB`),
    );

    writeFileSync(`${lab.base?.path as string}.base.json`, 'garbage');
    const [damaged] = await listed();
    expect(damaged?.version).toBeUndefined();
    expect(damaged?.problem).toMatch(/is damaged: not JSON$/);
  });
});
