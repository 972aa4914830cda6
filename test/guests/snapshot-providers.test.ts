/**
 * The snapshot-provider conformance suite (as restic's backend tests: one suite, a function over a
 * provider and a filesystem fixture), run against the reflink provider on a real XFS (reflink=1) and
 * a real btrfs loop device. ext4 and tmpfs must be refused with a clear reason, and nothing made there.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ColdSnapshot, SnapshotProvider, SnapshotSource } from '../../src/core/index.js';
import { isColdvaultError } from '../../src/core/index.js';
import { ReflinkProvider, snapshotProviderFor, snapshotProviders } from '../../src/guests/snapshots/index.js';
import { mountFs, type MountedFs, type SnapshotFsKind } from '../helpers/snapshot-fs.js';

const MiB = 1024 * 1024;
const work = mkdtempSync(join(tmpdir(), 'cv-snapprov-'));
const mounts: MountedFs[] = [];

afterAll(() => {
  for (const m of mounts.reverse()) m.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const mode = (path: string): number => statSync(path).mode & 0o777;

interface Fixture {
  provider: SnapshotProvider;
  /** a storage folder on the filesystem under test */
  storage: string;
}

/** A disk file `images/<vmid>/vm-<vmid>-disk-<n>.raw` in the storage holding `bytes` random bytes. */
function makeDisk(storage: string, guestId: string, key: string, bytes = 4 * MiB): SnapshotSource {
  const dir = join(storage, 'images', guestId);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `vm-${guestId}-disk-${key.replace(/\D/g, '')}.raw`);
  writeFileSync(path, randomBytes(bytes), { mode: 0o644 });
  return { guestId, key, path };
}

/** Rewrites the disk in place (same inode): its first and last MiB, and appends a MiB. */
function rewriteInPlace(path: string): void {
  const size = statSync(path).size;
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, randomBytes(MiB), 0, MiB, 0);
    writeSync(fd, randomBytes(MiB), 0, MiB, size - MiB);
    writeSync(fd, randomBytes(MiB), 0, MiB, size);
  } finally {
    closeSync(fd);
  }
}

const tagsOf = (snaps: ColdSnapshot[]): string[] => snaps.map((s) => `${s.key}.${s.tag}`).sort();

/** The conformance suite every snapshot provider passes on a filesystem it accepts. */
function providerConformance(label: string, fixture: () => Fixture): void {
  describe(`snapshot provider conformance: ${label}`, () => {
    it('accepts a disk file; a snapshot holds the bytes of the disk at create time while the disk is rewritten', async () => {
      const { provider, storage } = fixture();
      const disk = makeDisk(storage, '101', 'scsi0');
      expect(await provider.refusal(disk)).toBeUndefined();
      const before = sha(disk.path);
      const snap = await provider.create(disk, 'run-1-boot');
      expect(snap).toMatchObject({ ...disk, provider: provider.name, tag: 'run-1-boot' });
      expect(execFileSync('filefrag', ['-v', snap.snapshotPath], { encoding: 'utf8' })).toMatch(/shared/); // a clone, not a copy
      rewriteInPlace(disk.path);
      expect(sha(disk.path)).not.toBe(before);
      expect(sha(snap.snapshotPath)).toBe(before);
      expect(statSync(snap.snapshotPath).size).toBe(4 * MiB);
      await provider.remove(snap);
    });

    it('lives in a private coldvault folder at the top of the storage, named so that no tool takes it for a volume', async () => {
      const { provider, storage } = fixture();
      const disk = makeDisk(storage, '102', 'virtio1');
      const snap = await provider.create(disk, 'run-2-boot');
      expect(snap.snapshotPath).toBe(join(storage, '.coldvault-snapshots', '102', 'virtio1.run-2-boot'));
      expect(mode(join(storage, '.coldvault-snapshots'))).toBe(0o700);
      expect(mode(join(storage, '.coldvault-snapshots', '102'))).toBe(0o700);
      expect(mode(snap.snapshotPath)).toBe(0o600); // the disk was 0644
      expect(readdirSync(join(storage, 'images', '102'))).toEqual(['vm-102-disk-1.raw']); // nothing beside the volume
      expect(readdirSync(storage).filter((n) => n.startsWith('.coldvault-reflink-probe'))).toEqual([]);
      await provider.remove(snap);
    });

    it('create of a missing disk fails and leaves nothing', async () => {
      const { provider, storage } = fixture();
      const disk = makeDisk(storage, '103', 'scsi0');
      const snap = await provider.create(disk, 'run-3-boot'); // the folder exists now
      const gone = { ...disk, key: 'scsi1', path: join(storage, 'images', '103', 'vm-103-disk-9.raw') };
      const err = await provider.create(gone, 'run-3-boot').catch((e: unknown) => e);
      expect(isColdvaultError(err, 'SNAPSHOT_FAILED'), String(err)).toBe(true);
      expect(String(err)).toContain('vm-103-disk-9.raw');
      expect(readdirSync(join(storage, '.coldvault-snapshots', '103'))).toEqual(['scsi0.run-3-boot']);
      await provider.remove(snap);
    });

    it('retag renames (replacing a base of that tag), remove is idempotent, list finds every snapshot of the guest', async () => {
      const { provider, storage } = fixture();
      const d0 = makeDisk(storage, '104', 'scsi0');
      const d1 = makeDisk(storage, '104', 'scsi1', 2 * MiB);
      const other = makeDisk(storage, '105', 'scsi0');
      const first = await provider.create(d0, 'run-4-boot');
      const firstSha = sha(first.snapshotPath);
      const base = await provider.retag(first, 'base-store1');
      expect(base.snapshotPath).toBe(join(storage, '.coldvault-snapshots', '104', 'scsi0.base-store1'));
      expect(existsSync(first.snapshotPath)).toBe(false);
      expect(sha(base.snapshotPath)).toBe(firstSha);

      rewriteInPlace(d0.path);
      const second = await provider.create(d0, 'run-5-boot');
      const secondSha = sha(second.snapshotPath);
      expect(secondSha).not.toBe(firstSha);
      const s1 = await provider.create(d1, 'run-5-boot');
      await provider.create(other, 'run-5-boot');
      writeFileSync(join(storage, '.coldvault-snapshots', '104', '.scsi0.run-6-boot.tmp-6-abcd1234'), 'a create cut short');
      expect(tagsOf(await provider.list('104', [d0, d1]))).toEqual(['scsi0.base-store1', 'scsi0.run-5-boot', 'scsi1.run-5-boot']);

      const replaced = await provider.retag(second, 'base-store1');
      expect(sha(replaced.snapshotPath)).toBe(secondSha);
      const listed = await provider.list('104', [d0, d1]);
      expect(tagsOf(listed)).toEqual(['scsi0.base-store1', 'scsi1.run-5-boot']);
      expect(listed.find((s) => s.key === 'scsi1')).toMatchObject({ ...d1, provider: provider.name, snapshotPath: s1.snapshotPath });

      await provider.remove(s1);
      await provider.remove(s1); // already gone: resolves
      expect(tagsOf(await provider.list('104', [d0, d1]))).toEqual(['scsi0.base-store1']);
      expect(tagsOf(await provider.list('105', [other]))).toEqual(['scsi0.run-5-boot']);
    });

    it('refuses a source that is not a regular file', async () => {
      const { provider, storage } = fixture();
      const dir = join(storage, 'images', '106');
      mkdirSync(dir, { recursive: true });
      expect(await provider.refusal({ guestId: '106', key: 'scsi0', path: dir })).toMatch(/not a regular file/);
    });
  });
}

function reflinkFixture(kind: SnapshotFsKind): () => Fixture {
  let fx: Fixture | undefined;
  beforeAll(() => {
    const storage = join(work, `${kind}-storage`);
    mounts.push(mountFs(kind, work, storage));
    fx = { storage, provider: new ReflinkProvider({ storageDirs: [storage] }) };
  });
  return () => {
    if (!fx) throw new Error('fixture not ready');
    return fx;
  };
}

providerConformance('reflink on XFS (reflink=1)', reflinkFixture('xfs'));
providerConformance('reflink on btrfs', reflinkFixture('btrfs'));

describe('reflink provider: filesystems without reflink are refused', () => {
  for (const [kind, name] of [
    ['ext4', 'ext4'],
    ['tmpfs', 'tmpfs'],
  ] as const) {
    it(`${kind}: refused with the reason; create fails and leaves nothing`, async () => {
      const storage = join(work, `${kind}-refused`);
      mounts.push(mountFs(kind, work, storage));
      const disk = makeDisk(storage, '201', 'scsi0');
      const [provider] = snapshotProviders({ storageDirs: [storage] }) as [SnapshotProvider];
      const refusal = await provider.refusal(disk);
      expect(refusal).toMatch(new RegExp(`filesystem \\(${name}\\) refuses reflink clones`));
      expect(await snapshotProviderFor([provider], disk)).toEqual({ refusal });
      const err = await provider.create(disk, 'run-1-boot').catch((e: unknown) => e);
      expect(isColdvaultError(err, 'SNAPSHOT_FAILED'), String(err)).toBe(true);
      expect(existsSync(join(storage, '.coldvault-snapshots', '201'))).toBe(false);
      expect(readdirSync(storage).filter((n) => n.startsWith('.coldvault-reflink-probe'))).toEqual([]);
      expect(await provider.list('201', [disk])).toEqual([]);
    });
  }
});

describe('reflink provider: where the snapshot folder goes', () => {
  it('beside the disk when the storage folder is on another filesystem; refused when even that is', async () => {
    const storage = join(work, 'ext4-top');
    mounts.push(mountFs('ext4', work, storage));
    const nested = join(storage, 'images', '301');
    mounts.push(mountFs('xfs', work, nested)); // the guest's image folder is an XFS mount inside an ext4 storage
    const disk = makeDisk(storage, '301', 'scsi0');
    const provider = new ReflinkProvider({ storageDirs: [storage] });
    expect(await provider.refusal(disk)).toBeUndefined();
    const snap = await provider.create(disk, 'run-7-boot');
    expect(snap.snapshotPath).toBe(join(nested, '.coldvault-snapshots', '301', 'scsi0.run-7-boot'));
    expect(tagsOf(await provider.list('301', [disk]))).toEqual(['scsi0.run-7-boot']);
    await provider.remove(snap);

    // a disk file bind-mounted from XFS onto a file in the ext4 storage: its folder is on another filesystem
    const bound = join(storage, 'images', '302', 'vm-302-disk-0.raw');
    mkdirSync(join(storage, 'images', '302'), { recursive: true });
    writeFileSync(bound, '');
    execFileSync('mount', ['--bind', disk.path, bound]);
    try {
      const refusal = await provider.refusal({ guestId: '302', key: 'scsi0', path: bound });
      expect(refusal).toMatch(/is on another filesystem than the disk/);
    } finally {
      spawnSync('umount', [bound]);
    }
    expect(lstatSync(bound).size).toBe(0);
  });
});
