/**
 * An emulated USB disk: a sparse file on a loop device (direct I/O to its backing file, so the host's
 * page cache does not hide the device), ext4 on it, and a cgroup v1 blkio group that throttles reads
 * and writes to the loop device's major:minor at `bps` bytes/s. Processes run in that cgroup see the
 * limit for direct and for buffered+fsync writes (measured on the bench's machines).
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from './exec.mjs';

const BLKIO = '/sys/fs/cgroup/blkio';

export function usbSupport() {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync(join(BLKIO, 'blkio.throttle.write_bps_device'))) return `no cgroup v1 blkio throttling at ${BLKIO}`;
  if (!existsSync('/dev/loop-control')) return 'no loop devices';
  return null;
}

export function setupUsb({ dir, name, sizeBytes, bps }) {
  const backing = join(dir, `usb-${name}.img`);
  const mnt = join(dir, `usb-${name}-mnt`);
  const cgroup = join(BLKIO, `coldvault-bench-${name}`);
  cleanupUsb({ backing, mnt, cgroup });
  mkdirSync(mnt, { recursive: true });
  sh('truncate', ['-s', String(sizeBytes), backing]);
  const loop = sh('losetup', ['-f', '--show', '--direct-io=on', backing]);
  const usb = { name, bps, backing, mnt, cgroup, loop, majmin: '' };
  try {
    usb.majmin = sh('lsblk', ['-dno', 'MAJ:MIN', loop]).replace(/\s/g, '');
    sh('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', loop]);
    sh('mount', [loop, mnt]);
    mkdirSync(cgroup, { recursive: true });
    writeFileSync(join(cgroup, 'blkio.throttle.write_bps_device'), `${usb.majmin} ${bps}\n`);
    writeFileSync(join(cgroup, 'blkio.throttle.read_bps_device'), `${usb.majmin} ${bps}\n`);
  } catch (err) {
    cleanupUsb(usb);
    throw err;
  }
  return usb;
}

/** Bytes the cgroup has read from / written to the device so far. */
export function blkioBytes(usb) {
  const text = readFileSync(join(usb.cgroup, 'blkio.throttle.io_service_bytes'), 'utf8');
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    const [dev, op, n] = line.trim().split(/\s+/);
    if (dev !== usb.majmin) continue;
    if (op === 'Read') read = Number(n);
    if (op === 'Write') write = Number(n);
  }
  return { read, write };
}

export function cleanupUsb({ backing, mnt, cgroup }) {
  if (mnt && existsSync(mnt)) {
    sh('umount', [mnt], { allowFail: true, stdio: 'ignore' });
    rmSync(mnt, { recursive: true, force: true });
  }
  if (backing && existsSync(backing)) {
    const loops = sh('losetup', ['-j', backing], { allowFail: true });
    for (const line of loops.split('\n')) {
      const dev = line.split(':')[0];
      if (dev) sh('losetup', ['-d', dev], { allowFail: true, stdio: 'ignore' });
    }
    rmSync(backing, { force: true });
  }
  if (cgroup && existsSync(cgroup)) {
    try {
      rmdirSync(cgroup);
    } catch {
      /* still has processes: left for the next run to remove */
    }
  }
}
