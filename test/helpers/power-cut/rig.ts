/**
 * The power-cut rig: a small ext4 or XFS filesystem on a loop device of our own, and a way to cut its
 * power under a running coldvault process the way xfstests does.
 *
 * A cut is `xfs_io -x -c shutdown MOUNTPOINT`: XFS_IOC_GOINGDOWN (ext4: EXT4_IOC_SHUTDOWN, the same
 * ioctl number) with the NOLOGFLUSH flag, i.e. without `-f`: the filesystem stops at once and its
 * in-memory log is thrown away, and nothing in the page cache reaches the disk any more: whatever was
 * not fsynced (file data, renames, unlinks not yet committed to the journal) is lost, exactly as in a
 * power cut. Then the process is killed (-9), the filesystem unmounted and mounted again: the journal
 * replay happens there, and what is on the "disk" afterwards is what a machine would find after the
 * power came back. (A loop device has no volatile write cache: a disk's own cache is not modelled.)
 *
 * Where the cut falls:
 * - `time`: after a delay from the start of the process (xfstests' way: random moments);
 * - `syscall`: an LD_PRELOAD shim (cut-shim.c) stops the process (SIGSTOP) right after its Nth call of
 *   one kind, counted over all its threads (the Nth rename, fsync, unlink ...): a cut between two given
 *   calls, reproducible up to the order in which the process's threads make them;
 * - `end`: right after the process ended by itself.
 * A process that ended before its cut point is cut after its end: what it reported done must survive.
 *
 * Loop devices are shared with other developers' tests: only the device `losetup -f --show` gave us
 * is ever touched, and it is detached in destroy().
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type FsType = 'ext4' | 'xfs';

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const MKFS: Record<FsType, string[]> = {
  ext4: ['mkfs.ext4', '-q', '-F'],
  // xfs wants at least 300 MiB; -f: the sparse file holds no old filesystem, but be explicit
  xfs: ['mkfs.xfs', '-q', '-f'],
};

/** Every rig not yet destroyed: destroyAllRigs() cleans up after an interrupted run (SIGINT). */
const live = new Set<LoopFs>();

export function destroyAllRigs(): void {
  for (const rig of [...live]) rig.destroy();
}

/** A filesystem on a loop device of our own, mounted on `<work>/mnt`. */
export class LoopFs {
  private mountedNow = false;

  private constructor(
    readonly fs: FsType,
    readonly work: string,
    readonly image: string,
    readonly device: string,
    readonly mnt: string,
  ) {}

  /** Makes a sparse image of `sizeMiB`, attaches it, makes the filesystem and mounts it. */
  static create(fs: FsType, work: string, sizeMiB = 1024): LoopFs {
    mkdirSync(work, { recursive: true });
    const image = join(work, `${fs}.img`);
    const mnt = join(work, 'mnt');
    mkdirSync(mnt, { recursive: true });
    sh('truncate', ['-s', `${sizeMiB}M`, image]);
    const device = sh('losetup', ['-f', '--show', image]);
    const rig = new LoopFs(fs, work, image, device, mnt);
    live.add(rig);
    try {
      const [cmd, ...args] = MKFS[fs];
      sh(cmd as string, [...args, device]);
      rig.mount();
    } catch (err) {
      rig.destroy();
      throw err;
    }
    return rig;
  }

  get mounted(): boolean {
    return this.mountedNow;
  }

  mount(): void {
    sh('mount', ['-t', this.fs, this.device, this.mnt]);
    this.mountedNow = true;
  }

  /** The power cut: the filesystem goes down without writing its log. */
  shutdown(): void {
    sh('xfs_io', ['-x', '-c', 'shutdown', this.mnt]);
  }

  /**
   * Unmounts (waiting for killed processes to let go of their files) and mounts: the journal replay.
   * With `fsck`, the filesystem itself is then checked (unmounted, after the replay); returns that
   * check's complaint, if any.
   */
  async remount(fsck = false): Promise<string | undefined> {
    await this.unmount();
    this.mount();
    if (!fsck) return undefined;
    await this.unmount(); // the check reads the filesystem as the replay left it
    const complaint = this.fsck();
    this.mount();
    return complaint;
  }

  async unmount(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const r = spawnSync('umount', [this.mnt], { encoding: 'utf8' });
      if (r.status === 0) break;
      if (attempt >= 200) throw new Error(`umount ${this.mnt} failed: ${r.stderr}`);
      await sleep(25);
    }
    this.mountedNow = false;
  }

  /** Read-only check of the filesystem itself (unmounted): undefined when clean, else the report. */
  fsck(): string | undefined {
    const r =
      this.fs === 'ext4' ? spawnSync('e2fsck', ['-fn', this.device], { encoding: 'utf8' }) : spawnSync('xfs_repair', ['-n', this.device], { encoding: 'utf8' });
    return r.status === 0 ? undefined : `${r.stdout}${r.stderr}`;
  }

  /** Unmounts (lazily if need be), detaches our loop device and removes the work folder. */
  destroy(): void {
    live.delete(this);
    if (this.mountedNow || isMounted(this.mnt)) spawnSync('umount', ['-l', this.mnt]);
    this.mountedNow = false;
    spawnSync('losetup', ['-d', this.device]);
    rmSync(this.work, { recursive: true, force: true });
  }
}

function isMounted(dir: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1] === dir);
}

/** fsync a file the harness wrote itself (a source image, a guest config): our own writes are not under test. */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The kinds of call a `syscall` cut counts (cut-shim.c wraps the libc functions of each kind: every
 * thread of the process counts together; writes only to regular files).
 */
export const SYSCALL_KINDS = ['rename', 'fsync', 'unlink', 'write', 'utimensat', 'mkdir', 'link', 'ftruncate'] as const;
export type SyscallKind = (typeof SYSCALL_KINDS)[number];

/** After a delay from the start; after the Nth call of a kind; or as soon as the process has ended. */
export type CutPoint = { kind: 'time'; ms: number } | { kind: 'syscall'; call: SyscallKind; nth: number } | { kind: 'end' };

export function describeCut(p: CutPoint): string {
  if (p.kind === 'end') return 'at its end';
  return p.kind === 'time' ? `after ${p.ms} ms` : `after ${p.call} #${p.nth}`;
}

export interface CutRun {
  /** the coldvault process's pid */
  pid: number;
  /** the process had ended (by itself) before the cut */
  exitedBeforeCut: boolean;
  /** exit code when it ended by itself */
  code: number | null;
  stdout: string;
  stderr: string;
  /** ms from the start to the cut */
  cutAtMs: number;
  /** ms from the start to its end, when it ended before the cut */
  ranMs?: number;
  /** syscall cuts: calls of the kind the process had made when cut (all of them, when it ended first) */
  calls?: number;
  /** with fsck: what e2fsck / xfs_repair found wrong with the filesystem after the cut */
  fsck?: string;
}

export interface CutOptions {
  env?: Record<string, string>;
  /** check the filesystem (fsck) between unmount and mount */
  fsck?: boolean;
  /** false: only kill -9 at the point (the page cache survives), no power cut; default true */
  power?: boolean;
  /** write the page cache back (syncfs) at the point, before the cut: what the kernel's flusher does
   * to a long-running process's files after 30 s, so the cut loses only what happened since */
  writeback?: boolean;
  /** the compiled cut-shim.c for syscall cuts (default: the one of the CLI's checkout) */
  shim?: string;
}

/**
 * Runs `node cli args` (with the shim for a syscall cut), cuts the power at `point`, kills the
 * process group, unmounts and mounts the filesystem again (with `power: false`, only kills).
 */
export async function runAndCut(rig: LoopFs, cli: string, args: string[], point: CutPoint, opts: CutOptions = {}): Promise<CutRun> {
  const { env = {}, fsck = false, power = true } = opts;
  const counts = join(rig.work, 'cut-counts');
  rmSync(counts, { force: true });
  const shim =
    point.kind === 'syscall'
      ? { LD_PRELOAD: opts.shim ?? cutShim(repoOf(cli)), CV_CUT_KIND: point.call, CV_CUT_NTH: String(point.nth), CV_CUT_COUNTS: counts }
      : {};
  const started = Date.now();
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...env, ...shim } });
  const exit = collect(child);
  let ranMs: number | undefined;
  void exit.then(() => (ranMs = Date.now() - started));
  if (point.kind === 'time') await Promise.race([exit, sleep(point.ms)]);
  else if (point.kind === 'syscall') await Promise.race([exit, waitStopped(child.pid as number)]);
  else await exit;
  if (point.kind === 'time' && ranMs !== undefined) await sleep(Math.max(0, point.ms - (Date.now() - started))); // ended first: cut at the planned moment
  const exitedBeforeCut = ranMs !== undefined;
  const cutAtMs = Date.now() - started;
  if (opts.writeback) execFileSync('sync', ['-f', rig.mnt]);
  if (power) rig.shutdown();
  killGroup(child.pid as number);
  const r = await exit;
  const complaint = power ? await rig.remount(fsck) : undefined;
  const calls = point.kind === 'syscall' ? (exitedBeforeCut ? readCounts(counts)[point.call] : point.nth) : undefined;
  return {
    pid: child.pid as number,
    exitedBeforeCut,
    code: exitedBeforeCut ? r.code : null,
    stdout: r.stdout,
    stderr: r.stderr,
    cutAtMs,
    ranMs: exitedBeforeCut ? ranMs : undefined,
    calls,
    fsck: complaint,
  };
}

/** Resolves once the process is stopped (the shim raised SIGSTOP). */
async function waitStopped(pid: number): Promise<void> {
  while (processState(pid) !== 'T') await sleep(2);
}

function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
}

function readCounts(file: string): Record<SyscallKind, number> {
  const counts = Object.fromEntries(SYSCALL_KINDS.map((k) => [k, 0])) as Record<SyscallKind, number>;
  if (!existsSync(file)) return counts;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [kind, n] = line.split(' ');
    if (kind && kind in counts) counts[kind as SyscallKind] = Number(n);
  }
  return counts;
}

/** Runs `node cli args` to its end with the shim counting (no cut): its calls of each kind. Throws when it fails. */
export async function countSyscalls(rig: LoopFs, cli: string, args: string[], env: Record<string, string> = {}): Promise<Record<SyscallKind, number>> {
  const shim = cutShim(repoOf(cli));
  const file = join(rig.work, 'count-only');
  rmSync(file, { force: true });
  const child = spawn(process.execPath, [cli, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env, LD_PRELOAD: shim, CV_CUT_COUNTS: file },
  });
  const r = await collect(child);
  if (r.code !== 0) throw new Error(`coldvault ${args.join(' ')} (counting calls) exited ${r.code}\n${r.stderr}`);
  return readCounts(file);
}

/** cut-shim.c of the checkout `repo`, compiled once (per version of its source) into its node_modules/.cache. */
const shims = new Map<string, string>();
export function cutShim(repo: string): string {
  const known = shims.get(repo);
  if (known) return known;
  const source = join(repo, 'test', 'helpers', 'power-cut', 'cut-shim.c');
  const text = readFileSync(source);
  const dir = join(repo, 'node_modules', '.cache', 'coldvault-power-cut');
  const path = join(dir, `cut-shim-${createHash('sha256').update(text).digest('hex').slice(0, 12)}.so`);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    const temp = `${path}.${process.pid}.tmp`;
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', temp, source, '-ldl'], { stdio: ['ignore', 'pipe', 'pipe'] });
    renameSync(temp, path); // whole or absent: test files build it side by side
  }
  shims.set(repo, path);
  return path;
}

/** The checkout a CLI path (`<repo>/bin/coldvault.js`) belongs to. */
export const repoOf = (cli: string): string => dirname(dirname(cli));

function collect(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}
