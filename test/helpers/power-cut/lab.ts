/**
 * The lab of a power-cut campaign, entirely on the cut filesystem: the datastore, the guests dir (the
 * guests' configs and those restores write) and the `local` storage (the source disks and the
 * restored ones). Two guests: 101 with two disks (24 MiB of random, log-like text and zero regions,
 * and 8 MiB plus a short tail), 102 with one disk that shares chunks with 101. Region contents come
 * from a small pool of seeds, so chunks recur across versions and guests, and a chunk gc removed
 * comes back later. The harness's own writes (source disks, configs) are fsynced: only coldvault's
 * writes are under test.
 *
 * The lab also knows what may be in the store: per version number a backup was started for, the
 * digests of the source disks at that moment (`expected`).
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { prng, REGION, regionBytes, type Region } from '../fixtures.js';
import { chainDigest, versionKey, type ExpectedDisk, type ExpectedVersion } from './inspect.js';
import {
  countSyscalls,
  cutShim,
  fsyncPath,
  repoOf,
  LoopFs,
  runAndCut,
  type CutOptions,
  type CutPoint,
  type CutRun,
  type FsType,
  type SyscallKind,
} from './rig.js';

export const KEEP_ON_BACKUP = 4;
/** contents come from this many seeds per region, so chunks recur */
const SEED_POOL = 9;

interface DiskSpec {
  key: string;
  file: string;
  regions: Region[];
  tail: number;
}

export const GUESTS: Record<string, DiskSpec[]> = {
  '101': [
    { key: 'scsi0', file: 'vm-101-disk-0.raw', regions: ['random', 'zero', 'text', 'random', 'zero', 'text'], tail: 0 },
    { key: 'scsi1', file: 'vm-101-disk-1.raw', regions: ['text', 'random'], tail: 100_000 },
  ],
  '102': [{ key: 'scsi0', file: 'vm-102-disk-0.raw', regions: ['random', 'text', 'zero'], tail: 0 }],
};

export interface Rng {
  int(n: number): number;
  real(): number;
  pick<T>(xs: readonly T[]): T;
}

/** A PRNG for one purpose of one round: the same (seed, salt) gives the same draws. */
export function seededRng(seed: number, salt: number): Rng {
  const next = prng((Math.imul(seed >>> 0, 2654435761) ^ Math.imul(salt + 1, 40503)) >>> 0 || 1);
  for (let i = 0; i < 4; i++) next();
  const int = (n: number): number => next() % Math.max(1, n);
  return { int, real: () => next() / 2 ** 32, pick: (xs) => xs[int(xs.length)] as (typeof xs)[number] };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class PowerCutLab {
  readonly store: string;
  readonly guestsDir: string;
  readonly storageDir: string;
  readonly flags: string[];
  /** per version key: the disks as they were when a backup that may have made it started */
  readonly expected = new Map<string, ExpectedVersion>();
  /** per source image: the seed of each region */
  private readonly seeds = new Map<string, number[]>();
  private readonly env: Record<string, string>;

  private constructor(
    readonly rig: LoopFs,
    readonly cli: string,
  ) {
    this.store = join(rig.mnt, 'store');
    this.guestsDir = join(rig.mnt, 'guests');
    this.storageDir = join(rig.mnt, 'vz');
    this.flags = ['--store', this.store, '--guests-dir', this.guestsDir, '--storage', `local=${this.storageDir}`];
    this.env = { COLDVAULT_STATE_DIR: join(rig.work, 'state') };
  }

  /** A new filesystem with the two guests and an empty datastore, all durable. */
  static async create(fs: FsType, workParent: string, cli: string): Promise<PowerCutLab> {
    const rig = LoopFs.create(fs, mkdtempSync(join(workParent, `cv-powercut-${fs}-`)));
    try {
      const lab = new PowerCutLab(rig, cli);
      await lab.setup();
      return lab;
    } catch (err) {
      rig.destroy();
      throw err;
    }
  }

  private async setup(): Promise<void> {
    mkdirSync(this.guestsDir, { recursive: true });
    for (const [id, disks] of Object.entries(GUESTS)) {
      mkdirSync(join(this.storageDir, 'images', id), { recursive: true });
      writeFileSync(join(this.guestsDir, `${id}.conf`), guestConfig(id, disks));
      disks.forEach((d, i) =>
        this.writeSource(
          id,
          d,
          d.regions.map((_, r) => 1 + ((Number(id) + i + r) % SEED_POOL)),
        ),
      );
    }
    await this.ok(['datastore', 'init', this.store]);
    this.syncAll(); // the starting point is durable; everything after is under test
  }

  syncAll(): void {
    execFileSync('sync', ['-f', this.rig.mnt]);
  }

  private sourcePath(id: string, disk: DiskSpec): string {
    return join(this.storageDir, 'images', id, disk.file);
  }

  /** Writes a whole source disk (at setup). */
  private writeSource(id: string, disk: DiskSpec, seeds: number[]): void {
    const path = this.sourcePath(id, disk);
    const regions = disk.regions.map((kind, r) => regionContent(kind, seeds[r] as number, r));
    writeFileSync(path, Buffer.concat([...regions, tailContent(disk.tail)]));
    fsyncPath(path);
    this.seeds.set(path, seeds);
  }

  private freshSeeds = 0;

  /**
   * Rewrites one non-zero region of one of the guest's disks (or of `only.disk`) with content from the
   * seed pool (`only.fresh`: content never seen before).
   */
  mutate(id: string, rng: Rng, only: { fresh?: boolean; disk?: string } = {}): void {
    const disks = (GUESTS[id] as DiskSpec[]).filter((d) => only.disk === undefined || d.key === only.disk);
    const disk = rng.pick(disks);
    const path = this.sourcePath(id, disk);
    const seeds = [...(this.seeds.get(path) as number[])];
    const { i } = rng.pick(disk.regions.map((k, i) => ({ k, i })).filter((r) => r.k !== 'zero'));
    seeds[i] = only.fresh ? 1000 + this.freshSeeds++ : 1 + (((seeds[i] as number) + rng.int(SEED_POOL - 1)) % SEED_POOL);
    const fd = openSync(path, 'r+');
    try {
      writeSync(fd, regionContent(disk.regions[i] as Region, seeds[i], i), 0, REGION, i * REGION);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.seeds.set(path, seeds);
  }

  /** Records what a backup of `id` started now stores; returns the version number it will get. */
  expectBackup(id: string): number {
    const version = this.nextVersion(id);
    const disks = GUESTS[id] as DiskSpec[];
    this.expected.set(versionKey(id, version), Object.fromEntries(disks.map((d) => [d.key, this.digestOf(id, d)])));
    return version;
  }

  /** A source disk's digest, from its regions' (cached) digests: coldvault's chain of 4 MiB chunk SHA-256s. */
  private digestOf(id: string, disk: DiskSpec): ExpectedDisk {
    const seeds = this.seeds.get(this.sourcePath(id, disk)) as number[];
    const chunks = disk.regions.map((kind, r) => regionDigest(kind, seeds[r] as number, r));
    if (disk.tail > 0) chunks.push(createHash('sha256').update(tailContent(disk.tail)).digest());
    return { chain: chainDigest(chunks), size: disk.regions.length * REGION + disk.tail };
  }

  /** The number coldvault gives the next version of `id` (its own rule: last-version and the folders). */
  private nextVersion(id: string): number {
    const file = join(this.store, 'guests', id, 'last-version');
    const last = existsSync(file) ? Number(readFileSync(file, 'utf8')) || 0 : 0;
    return Math.max(last, ...this.folders(id), 0) + 1;
  }

  folders(id: string): number[] {
    const dir = join(this.store, 'guests', id);
    return existsSync(dir)
      ? readdirSync(dir)
          .filter((n) => /^\d+$/.test(n))
          .map(Number)
          .sort((a, b) => a - b)
      : [];
  }

  /** Every version folder, as "<guest>/<version>". */
  allVersions(): string[] {
    return Object.keys(GUESTS).flatMap((id) => this.folders(id).map((v) => versionKey(id, v)));
  }

  stagingFolders(id: string): string[] {
    const dir = join(this.store, 'guests', id);
    return existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('.staging-')) : [];
  }

  backupArgs(id: string): string[] {
    return ['backup', id, '--json', ...this.flags, '--compress', 'zstd', '--keep', String(KEEP_ON_BACKUP)];
  }

  restoreArgs(id: string, version: number, newId: string): string[] {
    return ['restore', id, '--version', String(version), '--new-id', newId, ...this.flags, '--json'];
  }

  run(args: string[]): Promise<CliResult> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [this.cli, ...args],
        { env: { ...process.env, ...this.env }, maxBuffer: 64 << 20, timeout: 300_000 },
        (err, stdout, stderr) => {
          const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  }

  async ok(args: string[]): Promise<CliResult> {
    const r = await this.run(args);
    if (r.code !== 0) throw new Error(`coldvault ${args.join(' ')} exited ${r.code}\n${r.stderr}${r.stdout}`);
    return r;
  }

  /** Runs a command and cuts the power under it (rig.ts); `cli` chooses another build (page-cache variant). */
  cut(args: string[], point: CutPoint, opts: Omit<CutOptions, 'env' | 'shim'> & { cli?: string } = {}): Promise<CutRun> {
    return runAndCut(this.rig, opts.cli ?? this.cli, args, point, { ...opts, env: this.env, shim: cutShim(repoOf(this.cli)) });
  }

  /** Runs a command to its end, counting its calls of each kind (cut-shim.c). */
  countSyscalls(args: string[]): Promise<Record<SyscallKind, number>> {
    return countSyscalls(this.rig, this.cli, args, this.env);
  }

  /** Sets every chunk's mtime an hour back: time has passed, so gc may sweep what no version uses. */
  ageChunks(): void {
    const root = join(this.store, 'chunks');
    const past = new Date(Date.now() - 3_600_000);
    for (const prefix of existsSync(root) ? readdirSync(root) : []) {
      for (const name of readdirSync(join(root, prefix))) utimesSync(join(root, prefix, name), past, past);
    }
  }

  /** Removes a restored guest (config, temp configs and volumes) to keep the filesystem small. */
  dropRestored(newId: string): void {
    for (const name of readdirSync(this.guestsDir).filter((n) => n === `${newId}.conf` || n.startsWith(`${newId}.conf.`)))
      rmSync(join(this.guestsDir, name), { force: true });
    rmSync(join(this.storageDir, 'images', newId), { recursive: true, force: true });
  }

  destroy(): void {
    this.rig.destroy();
  }
}

/** Region contents: zero, or random / log-like text from (seed, position). */
function regionContent(kind: Region, seed: number, position: number): Buffer {
  return regionBytes(kind, seed * 7919 + position);
}

const tailContent = (length: number): Buffer => (length > 0 ? regionBytes('text', 424_242, length) : Buffer.alloc(0));

const regionDigests = new Map<string, Buffer>();
function regionDigest(kind: Region, seed: number, position: number): Buffer {
  const key = kind === 'zero' ? 'zero' : `${kind}:${seed}:${position}`;
  let digest = regionDigests.get(key);
  if (!digest)
    regionDigests.set(
      key,
      (digest = createHash('sha256')
        .update(regionContent(kind, seed, position))
        .digest()),
    );
  return digest;
}

function guestConfig(id: string, disks: DiskSpec[]): string {
  const lines = [`name: powercut-${id}`, 'cores: 1', 'memory: 256', 'net0: virtio=A2:C0:43:77:08:A0,bridge=vmbr0'];
  for (const d of disks) lines.push(`${d.key}: local:${id}/${d.file},size=${d.regions.length * 4 + (d.tail ? 1 : 0)}M`);
  return `${lines.join('\n')}\n`;
}
