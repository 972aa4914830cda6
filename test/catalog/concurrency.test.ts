import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/index.js';
import { FileReader, makeManifest, publish, seed, tempDir } from './fixtures.js';

/** Runs a second node process that holds the catalog's write lock for `ms`; resolves once it has it. */
function holdWriteLock(file: string, ms: number): Promise<{ done: Promise<number> }> {
  const script = `
    import Database from 'better-sqlite3';
    const db = new Database(process.argv[1]);
    db.pragma('journal_mode = DELETE');
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); }, Number(process.argv[2]));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, file, String(ms)], {
    cwd: process.cwd(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const done = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve({ done }));
    child.once('error', reject);
  });
}

describe('two Catalog instances on one file', () => {
  it("see each other's writes", async () => {
    const dir = await tempDir();
    await seed(dir);
    const a = await Catalog.open(new FileReader(dir));
    const b = await Catalog.open(new FileReader(dir));
    a.recordVersion(makeManifest('101', 4));
    expect(b.latestVersion('101')).toBe(4);
    expect(b.getVersion('101', 4)?.disks).toHaveLength(2);
    b.markVerified('101', 4, 'ok');
    expect(a.getVersion('101', 4)?.verifyState).toBe('ok');
    b.setProtected('200', 1, true);
    expect(a.getVersion('200', 1)?.protected).toBe(true);
    a.removeVersion('1000', 1);
    expect(b.listVersions().map((v) => v.guestId)).not.toContain('1000');
    expect(b.storeTotals()).toEqual(a.storeTotals());
    a.close();
    b.close();
  });

  it('reconcile in both at once converges without losing a version recorded in between', async () => {
    const dir = await tempDir();
    await seed(dir);
    const a = await Catalog.open(new FileReader(dir));
    const b = await Catalog.open(new FileReader(dir));
    await publish(dir, makeManifest('101', 5));
    const racing = Promise.all([a.reconcile(), b.reconcile()]);
    a.recordVersion(makeManifest('400', 1)); // recorded while the listings run, its folder unseen by them
    await racing;
    expect(b.listVersions().map((v) => `${v.guestId}/${v.version}`)).toContain('101/5');
    expect(b.getVersion('400', 1)).toBeDefined();
    a.close();
    b.close();
  });

  it("waits for another process's write lock (busy_timeout) instead of failing", async () => {
    const dir = await tempDir();
    const catalog = await Catalog.open(new FileReader(dir));
    const other = await holdWriteLock(join(dir, 'catalog.sqlite'), 400);
    const started = Date.now();
    catalog.recordVersion(makeManifest('101', 1));
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(await other.done).toBe(0);
    expect(catalog.latestVersion('101')).toBe(1);
    catalog.close();
  });
});
