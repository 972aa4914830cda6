/**
 * A version's downtime from the backup to the user: the engine's backupGuest (in process, dist/) with
 * a job that answers `downtime` writes `downtimeMs` into the manifest and the line
 * `guest 101 was off for 00:00:14 (...)` into the task log and the version's backup.log (asked after
 * beforePublish, where a job may start the guest again, so it is known by then); the catalog
 * records it, `coldvault list --json` (the built CLI) shows it, and a rebuild from the manifests
 * gives it back. A backup whose job does not know it (or that is no job's) writes no field and no
 * line, exactly as manifests were before, and lists as null. A catalog file of schema 2 (before the
 * column) is migrated in place: its rows and their verify state stay, their downtime is null.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../dist/catalog/index.js';
import { Datastore } from '../../dist/datastore/index.js';
import { backupInProcess, DOWNTIME, DOWNTIME_LINE, DOWNTIME_MS } from '../helpers/downtime.js';
import { cli, imagePath, makeLab, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';

let lab: Lab;

beforeAll(async () => {
  lab = makeLab('cv-downtime-');
  for (const vmid of ['101', '102', '103']) {
    writeGuest(lab, vmid, [{ key: 'scsi0', file: `vm-${vmid}-disk-0.raw` }]);
    writeImage(imagePath(lab, vmid, `vm-${vmid}-disk-0.raw`), ['random', 'zero', 'text'], Number(vmid));
  }
  await Datastore.init(lab.storeDir);
});

afterAll(() => lab?.cleanup());

const backup = (guestId: string, downtime?: () => typeof DOWNTIME | undefined) => backupInProcess({ ...lab, guestId, downtime });

const manifestJson = (vmid: string, version: number): Record<string, unknown> =>
  JSON.parse(readFileSync(join(lab.storeDir, 'guests', vmid, String(version), 'manifest.json'), 'utf8')) as Record<string, unknown>;

const versionLog = (vmid: string, version: number): string => readFileSync(join(lab.storeDir, 'guests', vmid, String(version), 'backup.log'), 'utf8');

async function listed(vmid: string): Promise<Array<{ version: number; downtimeMs: number | null; verifyState: string; bootTest: unknown }>> {
  const r = await cli(['list', vmid, '--store', lab.storeDir, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Array<{ version: number; downtimeMs: number | null; verifyState: string; bootTest: unknown }>;
}

describe('downtime through manifest, catalog and list --json', () => {
  it('a job that knows the downtime: manifest downtimeMs, the log line in the task log and backup.log', async () => {
    const { manifest, lines } = await backup('101', () => DOWNTIME);
    expect(manifest.downtimeMs).toBe(DOWNTIME_MS);
    expect(manifestJson('101', 1).downtimeMs).toBe(DOWNTIME_MS);
    expect(lines).toContain(DOWNTIME_LINE);
    expect(versionLog('101', 1)).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d INFO: ${DOWNTIME_LINE.replace(/[().]/g, '\\$&')}$`, 'm'));
  });

  it('asked after beforePublish: a guest the job starts again there has its downtime in the manifest', async () => {
    let started = false;
    const { manifest, lines } = await backupInProcess({
      ...lab,
      guestId: '102',
      beforePublish: async (log) => {
        log.info('status after reading the disks = stopped');
        started = true; // the job starts the guest here (the flow without snapshots, issue 11)
      },
      downtime: () => (started ? DOWNTIME : undefined),
    });
    expect(manifestJson('102', manifest.version).downtimeMs).toBe(DOWNTIME_MS);
    const line = lines.indexOf(DOWNTIME_LINE.replace('guest 101', 'guest 102'));
    expect(line).toBeGreaterThan(lines.indexOf('status after reading the disks = stopped'));
  });

  it('a job that does not know it yet, and a backup that is no job: no field, no line', async () => {
    const unknown = await backup('101', () => undefined);
    const none = await backup('101');
    for (const { manifest, lines } of [unknown, none]) {
      expect(Object.hasOwn(manifestJson('101', manifest.version), 'downtimeMs')).toBe(false);
      expect(lines.filter((l) => l.includes('was off for'))).toEqual([]);
    }
  });

  it('list --json: downtimeMs per version, null where the manifest has none (as every older one)', async () => {
    expect((await listed('101')).map((v) => [v.version, v.downtimeMs])).toEqual([
      [1, DOWNTIME_MS],
      [2, null],
      [3, null],
    ]);
  });

  it('a catalog rebuilt from the manifests has the same downtimes', async () => {
    rmSync(join(lab.storeDir, 'catalog.sqlite'));
    const r = await cli(['catalog', 'rebuild', '--store', lab.storeDir]);
    expect(r.code, r.stderr).toBe(0);
    expect((await listed('101')).map((v) => v.downtimeMs)).toEqual([DOWNTIME_MS, null, null]);
  });

  it('a schema-2 catalog (before the column) is migrated: rows and verify state kept, downtime null; new versions record it', async () => {
    await backup('103');
    const verify = await cli(['verify', '--store', lab.storeDir]);
    expect(verify.code, verify.stderr).toBe(0);
    const file = join(lab.storeDir, 'catalog.sqlite');
    const db = new Database(file);
    // the schema-2 file exactly: the columns the v3, v4 and v5 migrations add taken away again
    for (const column of ['boot_ok', 'boot_seconds', 'boot_signal', 'boot_at', 'boot_detail']) db.exec(`ALTER TABLE versions DROP COLUMN ${column}`);
    db.exec('ALTER TABLE versions DROP COLUMN key_fingerprint');
    db.exec('ALTER TABLE versions DROP COLUMN downtime_ms');
    db.pragma('user_version = 2');
    db.close();

    const migrated = await listed('103');
    expect(migrated.map((v) => [v.version, v.downtimeMs, v.verifyState, v.bootTest])).toEqual([[1, null, 'ok', null]]);
    const check = new Database(file, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    check.close();

    await backup('103', () => DOWNTIME);
    expect((await listed('103')).map((v) => [v.version, v.downtimeMs, v.verifyState])).toEqual([
      [1, null, 'ok'],
      [2, DOWNTIME_MS, 'unverified'],
    ]);
  });
});
