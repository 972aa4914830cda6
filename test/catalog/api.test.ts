import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/index.js';
import { isColdvaultError } from '../../src/core/errors.js';
import { FileReader, makeManifest, protect, ProtectingReader, publish, seed, tempDir } from './fixtures.js';

async function emptyCatalog(): Promise<Catalog> {
  return Catalog.open(new FileReader(await tempDir()));
}

describe('Catalog rows', () => {
  it('records idempotently and keeps verify state and protection for the same backup', async () => {
    const catalog = await emptyCatalog();
    const manifest = makeManifest('101', 1);
    catalog.recordVersion(manifest);
    catalog.markVerified('101', 1, 'ok', 'all chunks read');
    catalog.setProtected('101', 1, true);
    catalog.recordVersion(manifest);
    expect(catalog.listVersions()).toHaveLength(1);
    expect(catalog.getVersion('101', 1)).toMatchObject({ verifyState: 'ok', verifyDetail: 'all chunks read', protected: true });
    expect(catalog.getVersion('101', 1)?.disks).toHaveLength(2);
    catalog.close();
  });

  it('replaces a version recorded again with another backup time, resetting verify state', async () => {
    const catalog = await emptyCatalog();
    catalog.recordVersion(makeManifest('101', 1));
    catalog.markVerified('101', 1, 'failed');
    const again = makeManifest('101', 1, { time: '2030-01-01T00:00:00.000Z', guestName: 'renamed' });
    catalog.recordVersion({ ...again, disks: again.disks.slice(0, 1) });
    expect(catalog.getVersion('101', 1)).toMatchObject({ name: 'renamed', verifyState: 'unverified', verifiedAt: null });
    expect(catalog.getVersion('101', 1)?.disks.map((d) => d.key)).toEqual(['scsi0']);
    catalog.close();
  });

  it('records a boot test: kept when the same backup is recorded again, reset by another backup time', async () => {
    const catalog = await emptyCatalog();
    catalog.recordVersion(makeManifest('101', 1));
    catalog.recordVersion(makeManifest('101', 2));
    expect(catalog.getVersion('101', 1)?.bootTest).toBeNull();
    const passed = { ok: true, seconds: 5.2, signal: 'serial /login:/', at: '2030-01-01T00:00:00.000Z', detail: 'serial: host login:' };
    catalog.markBootTest('101', 1, passed);
    catalog.markBootTest('101', 2, { ...passed, ok: false, detail: null });
    catalog.recordVersion(makeManifest('101', 1));
    expect(catalog.getVersion('101', 1)?.bootTest).toEqual(passed);
    expect(catalog.getVersion('101', 2)?.bootTest).toMatchObject({ ok: false, detail: null });
    catalog.recordVersion(makeManifest('101', 2, { time: '2030-02-01T00:00:00.000Z' }));
    expect(catalog.getVersion('101', 2)?.bootTest).toBeNull();
    expect(() => catalog.markBootTest('101', 9, passed)).toThrow(/recording the boot test of version 101\/9 in catalog .* failed: no such version/);
    catalog.close();
  });

  it('lists by numeric guest id then version, filters by guest, and answers latestVersion', async () => {
    const catalog = await emptyCatalog();
    for (const [guest, version] of [
      ['1000', 2],
      ['99999', 1],
      ['101', 10],
      ['101', 9],
      ['200', 1],
    ] as const) {
      catalog.recordVersion(makeManifest(guest, version));
    }
    expect(catalog.listVersions().map((v) => `${v.guestId}/${v.version}`)).toEqual(['101/9', '101/10', '200/1', '1000/2', '99999/1']);
    expect(catalog.listVersions('101').map((v) => v.version)).toEqual([9, 10]);
    expect(catalog.listVersions('555')).toEqual([]);
    expect(catalog.latestVersion('101')).toBe(10);
    expect(catalog.latestVersion('555')).toBeUndefined();
    expect(catalog.getVersion('101', 1)).toBeUndefined();
    catalog.close();
  });

  it('removes versions (idempotently) with their disks, and sums store totals', async () => {
    const catalog = await emptyCatalog();
    expect(catalog.storeTotals()).toEqual({ versions: 0, logicalBytes: 0, storedBytes: 0 });
    catalog.recordVersion(makeManifest('101', 1));
    catalog.recordVersion(makeManifest('101', 2));
    catalog.recordVersion(makeManifest('102', 3));
    catalog.removeVersion('101', 2);
    catalog.removeVersion('101', 2);
    const mib = 1024 * 1024;
    expect(catalog.storeTotals()).toEqual({ versions: 2, logicalBytes: 16 * mib + 1024 + 32 * mib + 1024, storedBytes: 4000 });
    expect(catalog.listVersions().flatMap((v) => v.disks)).toHaveLength(4);
    catalog.close();
  });

  it('refuses markVerified and setProtected on an unknown version with VERSION_NOT_FOUND', async () => {
    const catalog = await emptyCatalog();
    expect(() => catalog.markVerified('101', 1, 'ok')).toThrow(/marking version 101\/1 as ok in catalog .* failed: no such version/);
    let caught: unknown;
    try {
      catalog.setProtected('101', 1, true);
    } catch (err) {
      caught = err;
    }
    expect(isColdvaultError(caught, 'VERSION_NOT_FOUND')).toBe(true);
    catalog.close();
    catalog.close();
  });

  it('reads the protected file on rebuild and for versions reconcile adds', async () => {
    const dir = await tempDir();
    await seed(dir);
    await protect(dir, '101', 1);
    const catalog = await Catalog.open(new ProtectingReader(dir));
    expect(
      catalog
        .listVersions()
        .filter((v) => v.protected)
        .map((v) => `${v.guestId}/${v.version}`),
    ).toEqual(['101/1']);
    await publish(dir, makeManifest('300', 1));
    await protect(dir, '300', 1);
    expect(await catalog.reconcile()).toMatchObject({ added: 1, removed: 0 });
    expect(catalog.getVersion('300', 1)?.protected).toBe(true);
    catalog.setProtected('300', 1, false);
    expect(catalog.getVersion('300', 1)?.protected).toBe(false);
    catalog.close();
  });
});
