/**
 * Real filesystems for the cold-snapshot tests (root): XFS made with reflink=1 and btrfs (both make
 * reflink clones), ext4 (refuses them) on loop devices of their own, and a tmpfs, each mounted on a
 * folder. Loop devices are shared with other developers' tests: only the device `losetup -f --show`
 * gave us is ever touched, and it is detached in cleanup().
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export type SnapshotFsKind = 'xfs' | 'btrfs' | 'ext4' | 'tmpfs';

export interface MountedFs {
  kind: SnapshotFsKind;
  /** where it is mounted */
  dir: string;
  /** the loop device (none for tmpfs) */
  device?: string;
  cleanup(): void;
}

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

const MKFS: Record<Exclude<SnapshotFsKind, 'tmpfs'>, string[]> = {
  xfs: ['mkfs.xfs', '-q', '-f', '-m', 'reflink=1'], // at least 300 MiB
  btrfs: ['mkfs.btrfs', '-q', '-f'],
  ext4: ['mkfs.ext4', '-q', '-F'],
};

/** Makes a `kind` filesystem of `sizeMiB` (a sparse image in `work`) and mounts it on `dir` (made if missing). */
export function mountFs(kind: SnapshotFsKind, work: string, dir: string, sizeMiB = 320): MountedFs {
  mkdirSync(dir, { recursive: true });
  if (kind === 'tmpfs') {
    sh('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0755`, 'tmpfs', dir]);
    return { kind, dir, cleanup: () => unmount(dir) };
  }
  const image = join(work, `${kind}-${Math.random().toString(36).slice(2, 8)}.img`);
  sh('truncate', ['-s', `${sizeMiB}M`, image]);
  const device = sh('losetup', ['--find', '--show', image]);
  const cleanup = (): void => {
    unmount(dir);
    spawnSync('losetup', ['-d', device]);
    rmSync(image, { force: true });
  };
  try {
    const [tool, ...args] = MKFS[kind];
    sh(tool as string, [...args, device]);
    sh('mount', [device, dir]);
  } catch (err) {
    cleanup();
    throw err;
  }
  return { kind, dir, device, cleanup };
}

/** Unmounts `dir`, retrying for a few seconds while it is busy (a QEMU just killed still closing its disk), then lazily. */
function unmount(dir: string): void {
  for (let i = 0; i < 50; i++) {
    if (spawnSync('mountpoint', ['-q', dir]).status !== 0 || spawnSync('umount', [dir]).status === 0) return;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  }
  spawnSync('umount', ['-l', dir]);
}
