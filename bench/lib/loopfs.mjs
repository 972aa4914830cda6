/**
 * Real filesystems on loop devices for the cold-snapshot bench (root): a sparse image file in the
 * scratch folder, a loop device over it (only the device `losetup --find --show` gave us is ever
 * touched), mkfs (XFS with reflink=1, or ext4), mounted on a folder. cleanup() unmounts (retrying
 * while a QEMU that was just killed still holds a file), detaches the device and removes the image.
 * withMountedImage() mounts an ext4 image file (a guest's disk) for a moment to write into it.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmdirSync, rmSync } from 'node:fs';
import { sh } from './exec.mjs';

const MKFS = {
  xfs: ['mkfs.xfs', '-q', '-f', '-m', 'reflink=1'],
  // inode tables written now (no ext4lazyinit writing in the background while we measure), one inode per MiB
  ext4: ['mkfs.ext4', '-q', '-F', '-T', 'largefile', '-E', 'lazy_itable_init=0,lazy_journal_init=0'],
};

/** Makes a `kind` ('xfs' | 'ext4') filesystem of sizeBytes in the sparse file `image` and mounts it on `mnt`. */
export function mountLoopFs({ kind, image, mnt, sizeBytes }) {
  if (!MKFS[kind]) throw new Error(`mountLoopFs: unknown filesystem '${kind}'`);
  mkdirSync(mnt, { recursive: true });
  rmSync(image, { force: true });
  sh('truncate', ['-s', String(sizeBytes), image]);
  const device = sh('losetup', ['--find', '--show', image]);
  const fs = { kind, image, mnt, device, cleanup: () => detach(mnt, device, image) };
  try {
    const [tool, ...args] = MKFS[kind];
    sh(tool, [...args, device]);
    sh('mount', [device, mnt]);
  } catch (err) {
    fs.cleanup();
    throw err;
  }
  return fs;
}

/** Mounts the ext4 image file `image` on `mnt` (its own loop device), runs fn(mnt), syncs, unmounts, detaches. */
export async function withMountedImage(image, mnt, fn) {
  mkdirSync(mnt, { recursive: true });
  const device = sh('losetup', ['--find', '--show', image]);
  try {
    sh('mount', [device, mnt]);
    return await fn(mnt);
  } finally {
    detach(mnt, device, null);
  }
}

function detach(mnt, device, image) {
  unmount(mnt);
  spawnSync('losetup', ['-d', device]);
  if (image) rmSync(image, { force: true });
  try {
    rmdirSync(mnt); // only when empty: never deletes what a mount that did not go away still shows
  } catch {
    /* left for the scratch folder's removal */
  }
}

/** Unmounts `mnt`, retrying for 10 s while it is busy, then lazily. */
function unmount(mnt) {
  for (let i = 0; i < 100; i++) {
    if (spawnSync('mountpoint', ['-q', mnt]).status !== 0 || spawnSync('umount', [mnt]).status === 0) return;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  }
  spawnSync('umount', ['-l', mnt]);
}
