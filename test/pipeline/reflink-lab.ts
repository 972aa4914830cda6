/**
 * An XFS filesystem with reflink on a loop device of our own, for the changed-extent tests: a sparse
 * image file in /tmp, `losetup -f --show` (only the device it gave us is ever touched, and it is
 * detached in destroy()), `mkfs.xfs -m reflink=1`, mounted on `<work>/mnt`. Needs root.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { constants, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

export class ReflinkFs {
  private constructor(
    readonly work: string,
    readonly device: string,
    readonly mnt: string,
  ) {}

  /** Makes the filesystem (`sizeMiB`, sparse) and mounts it. */
  static create(sizeMiB = 1024, prefix = 'cv-reflink-'): ReflinkFs {
    const work = mkdtempSync(join('/tmp', prefix));
    const image = join(work, 'xfs.img');
    const mnt = join(work, 'mnt');
    mkdirSync(mnt);
    sh('truncate', ['-s', `${sizeMiB}M`, image]);
    const device = sh('losetup', ['-f', '--show', image]);
    const fs = new ReflinkFs(work, device, mnt);
    try {
      sh('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', device]);
      sh('mount', ['-t', 'xfs', device, mnt]);
    } catch (err) {
      fs.destroy();
      throw err;
    }
    return fs;
  }

  /** A reflink clone of `from` at `to` (FICLONE, as `cp --reflink=always`). */
  static clone(from: string, to: string): void {
    copyFileSync(from, to, constants.COPYFILE_FICLONE_FORCE);
  }

  /** Unmounts (lazily if need be), detaches our loop device and removes the work folder. */
  destroy(): void {
    if (readFileSync('/proc/self/mounts', 'utf8').includes(` ${this.mnt} `)) {
      if (spawnSync('umount', [this.mnt]).status !== 0) spawnSync('umount', ['-l', this.mnt]);
    }
    spawnSync('losetup', ['-d', this.device]);
    rmSync(this.work, { recursive: true, force: true });
  }
}
