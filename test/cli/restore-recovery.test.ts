/**
 * The cleanup a restore does after an earlier restore to the same id was killed
 * (src/pipeline/restore-recovery.ts) removes only what a restore makes: `vm-<id>-disk-N` files of
 * the storage's `images/<id>`. A leftover temp config that names a file outside the storages, or a
 * volume whose folder is a symlink out of the storage, removes nothing there. Real CLI, real files.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, imagePath, makeLab, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';
import { backup, initStore, restore } from './cli-lab.js';

let lab: Lab;
beforeEach(async () => {
  lab = makeLab('cv-restore-recovery-');
  writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
  writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), ['random', 'text'], 41);
  await initStore(lab);
  await backup(lab, '101');
});
afterEach(() => lab.cleanup());

/** What a restore to `id` killed between its disks and its config leaves: a temp config of a dead pid. */
function leaveTempConfig(id: string, lines: string[]): void {
  writeFileSync(join(lab.guestsDir, `${id}.conf.cvtmp-999999-dead`), `name: half\n${lines.join('\n')}\n`);
}

describe('cleaning up after a killed restore', () => {
  it('removes the disks the killed restore put in place, and nothing a forged leftover names outside the storages', async () => {
    const victim = join(lab.root, 'victim.raw');
    writeFileSync(victim, 'precious');
    mkdirSync(join(lab.storageDir, 'images', '300'), { recursive: true });
    const half = imagePath(lab, '300', 'vm-300-disk-5.raw');
    writeFileSync(half, 'half a disk');
    leaveTempConfig('300', [`scsi0: ${victim},size=1M`, 'scsi1: local:300/vm-300-disk-5.raw,size=1M', `scsi2: local:300/../../../victim.raw,size=1M`]);
    await restore(lab, '101', 1, '300');
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(existsSync(half)).toBe(false);
    expect(existsSync(join(lab.guestsDir, '300.conf.cvtmp-999999-dead'))).toBe(false);
  });

  it('removes nothing through an image folder that is a symlink out of the storage (and the restore is refused)', async () => {
    const elsewhere = join(lab.root, 'elsewhere');
    mkdirSync(elsewhere);
    const kept = join(elsewhere, 'vm-301-disk-0.raw');
    writeFileSync(kept, 'not ours');
    const keptTemp = join(elsewhere, 'vm-301-disk-1.raw.cvtmp-999999-dead');
    writeFileSync(keptTemp, 'not ours either');
    symlinkSync(elsewhere, join(lab.storageDir, 'images', '301'));
    leaveTempConfig('301', ['scsi0: local:301/vm-301-disk-0.raw,size=1M']);
    const r = await cli(['restore', '101', '--version', '1', '--new-id', '301', ...lab.flags]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('outside the target storage');
    expect(readFileSync(kept, 'utf8')).toBe('not ours');
    expect(readFileSync(keptTemp, 'utf8')).toBe('not ours either');
  });
});
