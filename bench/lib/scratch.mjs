/**
 * The scratch folder of bench/cold-snapshots.mjs and how to leave nothing behind, also after a crash
 * or Ctrl-C: QEMUs whose pidfile lies under it (and whose command line names it) are killed by pid,
 * mounts under it are unmounted (deepest first), loop devices whose backing file lies under it are
 * detached, then the folder is removed. Only what lies under the scratch folder is touched.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from './exec.mjs';

const under = (dir, path) => path === dir || path.startsWith(`${dir}/`);

function pidfiles(dir) {
  try {
    return readdirSync(dir, { recursive: true })
      .filter((p) => String(p).endsWith('.pid'))
      .map((p) => join(dir, String(p)));
  } catch {
    return [];
  }
}

function readOr(path, fallback = '') {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

function killQemus(dir) {
  for (const file of pidfiles(dir)) {
    const pid = Number.parseInt(readOr(file), 10);
    const cmdline = pid ? readOr(`/proc/${pid}/cmdline`) : '';
    if (cmdline.includes('qemu-system') && cmdline.includes(dir)) process.kill(pid, 'SIGKILL');
  }
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500); // let the kernel close their files
}

function unmountAll(dir) {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m) => m && under(dir, m))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    sh('umount', [m], { allowFail: true });
    if (isMounted(m)) sh('umount', ['-l', m], { allowFail: true });
  }
}

const isMounted = (m) =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === m);

function detachLoops(dir) {
  const list = sh('losetup', ['--list', '--noheadings', '--raw', '-O', 'NAME,BACK-FILE'], { allowFail: true });
  for (const line of list.split('\n')) {
    const [dev, ...file] = line.trim().split(' ');
    const back = file.join(' ').replace(/ \(deleted\)$/, '');
    if (dev && under(dir, back)) sh('losetup', ['-d', dev], { allowFail: true });
  }
}

/** Leaves nothing of a run (this one or an interrupted one) under `dir`; removes it unless keep. */
export function clearScratch(dir, { keep = false } = {}) {
  killQemus(dir);
  unmountAll(dir);
  detachLoops(dir);
  if (!keep) rmSync(dir, { recursive: true, force: true });
}
