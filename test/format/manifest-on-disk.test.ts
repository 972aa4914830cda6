/**
 * Manifests in a real datastore, through the built CLI: the ones this version of coldvault writes
 * (raw and qcow2 disks, an empty disk, a disk excluded with backup=0) still decode under the strict
 * schema, the format being frozen; and a manifest that names a path as its index (`../../../x.fidx`,
 * resealed with a valid checksum) makes neither verify nor restore read outside the version folder:
 * both refuse the version, naming the field, while a valid index file waits at the path's end.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeManifest, type Manifest } from '../../src/format/index.js';
import { cli, imagePath, makeLab, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';
import { backup, initStore, storeFlag } from '../cli/cli-lab.js';

let lab: Lab;
const manifestPath = (vmid: string, version: number): string => join(lab.storeDir, 'guests', vmid, String(version), 'manifest.json');

beforeAll(async () => {
  lab = makeLab('cv-manifest-disk-');
  await initStore(lab);
  writeGuest(lab, '101', [
    { key: 'scsi0', file: 'vm-101-disk-0.raw' },
    { key: 'scsi1', file: 'vm-101-disk-1.qcow2', format: 'qcow2' },
    { key: 'virtio2', file: 'vm-101-disk-2.raw' },
    { key: 'sata1', file: 'vm-101-disk-3.raw', extra: 'backup=0' },
  ]);
  writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), ['random', 'zero', 'text'], 3, 1234);
  const plain = join(lab.root, 'plain.raw');
  writeImage(plain, ['text', 'random'], 4);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', plain, imagePath(lab, '101', 'vm-101-disk-1.qcow2')]);
  writeFileSync(imagePath(lab, '101', 'vm-101-disk-2.raw'), '');
  writeImage(imagePath(lab, '101', 'vm-101-disk-3.raw'), ['text'], 5);
  await backup(lab, '101');
  await backup(lab, '101');
});

afterAll(() => lab?.cleanup());

/** Rewrites a version's manifest with `change` applied and a checksum that matches again. */
function tamper(vmid: string, version: number, change: (m: Manifest) => void): void {
  const file = manifestPath(vmid, version);
  const { checksum: _old, ...json } = JSON.parse(readFileSync(file, 'utf8')) as Manifest & { checksum: string };
  change(json);
  const checksum = createHash('sha256')
    .update(JSON.stringify(json, null, 2))
    .digest('hex');
  writeFileSync(file, `${JSON.stringify({ ...json, checksum }, null, 2)}\n`);
}

describe('manifests written by this version', () => {
  it('decode under the strict schema: every field as written, raw, qcow2, empty and excluded disks', () => {
    for (const version of [1, 2]) {
      const m = decodeManifest(readFileSync(manifestPath('101', version)), `of guest 101 version ${version}`);
      expect(m).toMatchObject({ format: 1, guestId: '101', version, guestName: 'test-101' });
      expect(m.disks.map((d) => [d.key, d.format, d.index])).toEqual([
        ['scsi0', 'raw', 'scsi0.fidx'],
        ['scsi1', 'qcow2', 'scsi1.fidx'],
        ['virtio2', 'raw', 'virtio2.fidx'],
      ]);
      expect(m.disks[2]).toMatchObject({ size: 0, chunkCount: 0, zeroChunks: 0, zeroBytes: 0 });
      expect(m.excluded).toEqual([{ key: 'sata1', volume: 'local:101/vm-101-disk-3.raw', reason: 'backup=no' }]);
    }
  });
});

describe('an index name that is a path', () => {
  beforeAll(() => {
    // a valid index file outside the version folder, where the tampered manifest points
    copyFileSync(join(lab.storeDir, 'guests', '101', '1', 'scsi0.fidx'), join(lab.root, 'outside.fidx'));
    tamper('101', 1, (m) => {
      (m.disks[0] as Manifest['disks'][number]).index = '../../../../outside.fidx';
    });
  });

  it('verify refuses the version naming the field, and still checks the others', async () => {
    const r = await cli(['verify', ...storeFlag(lab), '--json']);
    expect(r.code).toBe(1);
    const result = JSON.parse(r.stdout) as { versions: Array<{ guestId: string; version: number; ok: boolean; errors: string[] }> };
    const v1 = result.versions.find((v) => v.version === 1);
    expect(v1?.ok).toBe(false);
    expect(v1?.errors.join('\n')).toMatch(
      /disks\[0\]\.index must be a file name in the version folder ending in \.fidx \(no path\), not "\.\.\/\.\.\/\.\.\/\.\.\/outside\.fidx"/,
    );
    expect(result.versions.find((v) => v.version === 2)?.ok).toBe(true);
  });

  it('restore refuses it before writing anything', async () => {
    const r = await cli(['restore', '101', '--version', '1', '--new-id', '201', ...lab.flags]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/manifest of guest 101 version 1 is corrupt: disks\[0\]\.index must be a file name/);
    expect(existsSync(join(lab.guestsDir, '201.conf'))).toBe(false);
    expect(existsSync(join(lab.storageDir, 'images', '201')) ? readdirSync(join(lab.storageDir, 'images', '201')) : []).toEqual([]);
  });

  it('catalog rebuild skips and reports it, and lists the other', async () => {
    const r = await cli(['catalog', 'rebuild', ...storeFlag(lab), '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      versions: 1,
      skipped: [{ guestId: '101', version: 1, error: expect.stringMatching(/disks\[0\]\.index must be/) }],
    });
    const listed = await cli(['list', '101', ...storeFlag(lab), '--json']);
    expect((JSON.parse(listed.stdout) as Array<{ version: number }>).map((v) => v.version)).toEqual([2]);
  });
});
