/**
 * Damaged chunks through the real CLI: verify finds and names them, a restore of an affected version
 * fails cleanly (no config, no disk left behind), and the next backup of the same data heals the store.
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, makeLab, rewriteRegion, sha256File, writeGuest, writeImage, type Lab, type Region } from '../helpers/fixtures.js';
import { backup, chunkDigestOf, filesUnder, indexDigests, initStore, listJson, ok, restoreArgs, storeFlag } from './cli-lab.js';

const REGIONS: Region[] = ['random', 'text', 'zero', 'random', 'text', 'zero', 'text', 'random'];

type Damage = 'payload' | 'header' | 'delete';

/** Flips one byte of a file at `offset` (negative: from the end). */
function flipByte(path: string, offset: number): void {
  const at = offset >= 0 ? offset : statSync(path).size + offset;
  const fd = openSync(path, 'r+');
  try {
    const buf = Buffer.alloc(1);
    readSync(fd, buf, 0, 1, at);
    buf[0] = (buf[0] ?? 0) ^ 0x5a;
    writeSync(fd, buf, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

const CASES: Array<{ damage: Damage; region: number; what: string }> = [
  { damage: 'payload', region: 3, what: 'one byte flipped in the payload of a (raw, random-data) chunk' },
  { damage: 'header', region: 1, what: 'one byte flipped in the CRC field of a (zstd, text) chunk header' },
  { damage: 'delete', region: 6, what: 'a chunk file deleted' },
];

describe.each(CASES)('a damaged chunk: $what', ({ damage, region }) => {
  let lab: Lab;
  let disk: string;
  let hex: string;
  let chunkPath: string;
  let originalSha: string;
  const newIds = ['301', '302'];

  beforeAll(async () => {
    lab = makeLab(`cv-corrupt-${damage}-`);
    writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
    disk = imagePath(lab, '101', 'vm-101-disk-0.raw');
    writeImage(disk, REGIONS, 41);
    await initStore(lab);
    await backup(lab, '101');
    originalSha = sha256File(disk);
    // a second version shares every chunk but the one of region 0
    rewriteRegion(disk, 0, 'random', 4242);
    await backup(lab, '101');
    // the chunk that versions 1 and 2 use for this region, as its index lists it
    const digests = indexDigests(join(lab.storeDir, 'guests', '101', '1', 'scsi0.fidx'));
    hex = digests[region] ?? '';
    expect(hex).toBe(chunkDigestOf(disk, region));
    expect(indexDigests(join(lab.storeDir, 'guests', '101', '2', 'scsi0.fidx'))[region]).toBe(hex);
    chunkPath = join(lab.storeDir, 'chunks', hex.slice(0, 4), hex);
    expect(existsSync(chunkPath)).toBe(true);
    if (damage === 'payload') flipByte(chunkPath, -100);
    else if (damage === 'header') flipByte(chunkPath, 9);
    else rmSync(chunkPath);
  });
  afterAll(() => lab?.cleanup());

  /** A failed restore must leave neither a config nor any file (not even a temp) in the storage. */
  async function expectCleanRestoreFailure(newId: string): Promise<void> {
    const r = await cli(restoreArgs(lab, '101', 1, newId));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`chunk ${hex}.*(corrupt|missing)`));
    expect(existsSync(join(lab.guestsDir, `${newId}.conf`))).toBe(false);
    expect(filesUnder(join(lab.storageDir, 'images', newId))).toEqual([]);
  }

  // Restoring damaged data must fail loudly, never produce a silently wrong disk or a half guest.
  it('a restore of the affected version fails cleanly (before verify)', async () => {
    await expectCleanRestoreFailure(newIds[0]!);
  });

  // The user relies on verify to find damage and say which backups it hurts.
  it('verify --json exits 1 and names the bad chunk with the versions using it; list shows verified: false', async () => {
    const r = await cli(['verify', '--json', ...storeFlag(lab)]);
    expect(r.code).toBe(1);
    const result = JSON.parse(r.stdout) as {
      ok: boolean;
      badChunks: Array<{ digest: string; versions: string[]; error: string }>;
      versions: Array<{ version: number; ok: boolean }>;
    };
    expect(result.ok).toBe(false);
    expect(result.badChunks.map((b) => ({ digest: b.digest, versions: b.versions }))).toEqual([{ digest: hex, versions: ['101/1', '101/2'] }]);
    expect(result.versions).toMatchObject([
      { version: 1, ok: false },
      { version: 2, ok: false },
    ]);
    const listed = await listJson(lab);
    expect(listed).toMatchObject([
      { id: '101', version: 1, verified: false },
      { id: '101', version: 2, verified: false },
    ]);
    // the damaged file was moved aside (a deleted one cannot be)
    expect(existsSync(chunkPath)).toBe(false);
    const quarantined = readdirSync(join(lab.storeDir, 'quarantine')).filter((n) => n.startsWith(hex));
    expect(quarantined).toHaveLength(damage === 'delete' ? 0 : 1);
  });

  it('a restore of the affected version still fails cleanly after verify', async () => {
    await expectCleanRestoreFailure(newIds[1]!);
  });

  // Healing: the next backup of the unchanged guest writes the chunk again, and the old version is whole.
  it('the next backup heals the store: verify is clean and the old version restores byte-identical', async () => {
    const b = await backup(lab, '101');
    expect(b.version).toBe(3);
    expect(b.newBytes).toBe(4 * 1024 * 1024);
    expect(existsSync(chunkPath)).toBe(true);
    const v = await cli(['verify', '--json', ...storeFlag(lab)]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect((await listJson(lab)).map((x) => [x.version, x.verified])).toEqual([
      [1, true],
      [2, true],
      [3, true],
    ]);
    await ok(restoreArgs(lab, '101', 1, '303'));
    expect(sha256File(imagePath(lab, '303', 'vm-303-disk-0.raw'))).toBe(originalSha);
    // the ids whose restores failed are free again: nothing was left that would shift the disk numbers
    await ok(restoreArgs(lab, '101', 1, newIds[0]!));
    expect(sha256File(imagePath(lab, newIds[0]!, `vm-${newIds[0]}-disk-0.raw`))).toBe(originalSha);
  });
});
