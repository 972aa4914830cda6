/**
 * A job lab with the tiny real QEMU guest (TCG) for the downtime bench: the few lines of
 * test/jobs/helpers-jobs.ts it needs (makeJobLab with qemu, addTinyGuest, bootGuest), on the built
 * files (dist/cli/demo/tiny-guest.js, dist/jobs/index.js). Beyond the tests' lab:
 *  - the guest's disk is an ext4 image of diskBytes holding a data file of dataBytes (seeded
 *    pseudo-random 4 MiB regions, written through a loop mount of the image on the host);
 *  - the start command is wrapped to note (in `<vmid>.starts`, ns since the epoch) when coldvault runs it;
 *  - watchSerial() notes when the guest's console says it saw the power button and when the next
 *    boot is ready for it again (the tiny guest's boot marker and its "waiting" line).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from './exec.mjs';
import { REGION, randomRegion } from './images.mjs';
import { withMountedImage } from './loopfs.mjs';

export const READY = 'coldvault-tiny-guest: waiting for the power button';
const PRESSED = 'coldvault-tiny-guest: power button pressed';

/** The lab's folders, config file (hypervisor qemu) and guest `vmid` with its Proxmox config; no disk yet. */
export async function makeGuestLab({ repo, root, storageDir, storeDir, vmid }) {
  const tiny = await import(join(repo, 'dist/cli/demo/tiny-guest.js'));
  const lab = { repo, root, storageDir, storeDir, vmid, tiny, guestsDir: join(root, 'guests'), stateDir: join(root, 'state'), qemuDir: join(root, 'q') };
  for (const d of [lab.guestsDir, lab.stateDir, lab.qemuDir, join(storageDir, 'images', vmid)]) mkdirSync(d, { recursive: true });
  lab.disk = join(storageDir, 'images', vmid, `vm-${vmid}-disk-0.raw`);
  lab.files = tiny.guestFiles(lab.qemuDir, vmid);
  lab.startsFile = join(lab.qemuDir, `${vmid}.starts`);
  const { script } = await tiny.startScript({ dir: lab.qemuDir, guest: await tiny.ensureTinyGuest() });
  lab.startWrapper = join(lab.qemuDir, 'start.sh');
  writeFileSync(lab.startWrapper, `#!/bin/sh\n/bin/date +%s%N >> '${lab.startsFile}'\nexec '${script}' "$1"\n`, { mode: 0o755 });
  lab.configPath = join(root, 'coldvault.json');
  const hypervisor = { driver: 'qemu', qmpSocket: join(lab.qemuDir, '{vmid}.qmp'), startCommand: `${lab.startWrapper} {vmid}` };
  const config = { node: 'bench', stateDir: lab.stateDir, guestsDir: lab.guestsDir, storages: { local: storageDir }, hypervisor };
  writeFileSync(lab.configPath, JSON.stringify(config, null, 2));
  writeGuestConf(lab);
  return lab;
}

function writeGuestConf(lab) {
  const lines = [
    'boot: order=scsi0',
    'cores: 1',
    'memory: 256',
    'name: tiny',
    'ostype: l26',
    `scsi0: local:${lab.vmid}/vm-${lab.vmid}-disk-0.raw`,
    'scsihw: virtio-scsi-pci',
  ];
  writeFileSync(join(lab.guestsDir, `${lab.vmid}.conf`), `${lines.join('\n')}\n`);
}

/** The guest's disk: ext4 over diskBytes with /data.bin of dataBytes (seeded random regions); linked where the start script looks. */
export async function makeGuestDisk(lab, { diskBytes, dataBytes, seed }) {
  sh('truncate', ['-s', String(diskBytes), lab.disk]);
  sh('mkfs.ext4', ['-q', '-F', '-T', 'largefile', '-E', 'lazy_itable_init=0,lazy_journal_init=0', lab.disk]);
  await withMountedImage(lab.disk, join(lab.root, 'fill'), (mnt) => writeDataFile(join(mnt, 'data.bin'), dataBytes, seed));
  rmSync(lab.files.disk, { force: true });
  symlinkSync(lab.disk, lab.files.disk);
}

function writeDataFile(path, bytes, seed) {
  const fd = openSync(path, 'w', 0o600);
  const buf = Buffer.allocUnsafe(REGION);
  try {
    for (let i = 0; i * REGION < bytes; i++) {
      const n = Math.min(REGION, bytes - i * REGION);
      randomRegion(seed * 100_003 + i, buf);
      for (let done = 0; done < n; ) done += writeSync(fd, buf, done, n - done);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Boots the guest with the lab's start command (as coldvault would) and waits for it to be ready: seconds from start to ready. */
export async function bootGuest(lab) {
  const t0 = Date.now();
  sh(lab.startWrapper, [lab.vmid]);
  await lab.tiny.waitForSerial(lab.qemuDir, lab.vmid, READY, 120_000);
  return (Date.now() - t0) / 1000;
}

export const killGuest = (lab) => lab.tiny.killGuest(lab.qemuDir, lab.vmid);

const bootOf = (log) => Number(/coldvault-tiny-guest: boot (\d+) marker/.exec(log)?.[1] ?? 0);
const readLog = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

/**
 * Polls the serial log every 20 ms (QEMU truncates it when it starts again): `pressedAt` when the
 * guest says it saw the power button, `readyAt` when a boot after the current one is ready. Times are Date.now().
 */
export function watchSerial(lab) {
  const bootBefore = bootOf(readLog(lab.files.log));
  const seen = { bootBefore, pressedAt: undefined, readyAt: undefined, bootAfter: undefined };
  const timer = setInterval(() => {
    const log = readLog(lab.files.log);
    if (seen.pressedAt === undefined && log.includes(PRESSED)) seen.pressedAt = Date.now();
    const boot = bootOf(log);
    if (seen.readyAt === undefined && boot > bootBefore && log.includes(READY)) {
      seen.readyAt = Date.now();
      seen.bootAfter = boot;
    }
  }, 20);
  return {
    seen,
    /** waits (up to timeoutMs) for the next boot to be ready, then stops polling */
    async stop(timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      while (seen.readyAt === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      clearInterval(timer);
      return seen;
    },
  };
}

/** When coldvault last ran the start command (ms since the epoch). */
export function lastStartAt(lab) {
  const lines = readLog(lab.startsFile).trim().split('\n').filter(Boolean);
  return lines.length ? Number(BigInt(lines.at(-1)) / 1_000_000n) : undefined;
}

/** The task's log lines with their millisecond times, from the state database (dist/jobs). */
export async function taskLines(lab, taskId) {
  const { openStateDb, TaskStore } = await import(join(lab.repo, 'dist/jobs/index.js'));
  const db = openStateDb(lab.stateDir);
  try {
    return new TaskStore(db, lab.stateDir).lines(taskId).map((l) => ({ at: l.time.getTime(), message: l.message }));
  } finally {
    db.close();
  }
}
