/**
 * A power-cut campaign: rounds of "one coldvault operation, its power cut at a seeded moment, then the
 * checks" on one filesystem (lab.ts, operations.ts, rig.ts).
 *
 * A round: an uncut backup of 101 (the backup after the last cut must work), the operation's
 * preconditions, the operation cut by time or after its Nth system call of some kind, then the store
 * checks and the operation's own. The operations come in blocks of five, each block a seeded shuffle,
 * so every operation gets its share. At the end: a backup of each guest, `verify`, every listed version
 * restored and compared with its source byte for byte, gc, `verify` again.
 *
 * Seeds: every choice of round r (operation, data, where to cut) is drawn from (seed, r) alone, and the
 * seed is logged: the same seed replays the same sequence. A syscall cut falls between the same two
 * calls again; where a time cut falls also depends on the machine's speed.
 *
 * A failed round is logged with its problems and the cut operation's output; the campaign then goes on
 * on a fresh filesystem (with `keepFailed`, a copy of the failed one's image is kept).
 */
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../fixtures.js';
import { digestImage, versionKey } from './inspect.js';
import { GUESTS, PowerCutLab, seededRng, type Rng } from './lab.js';
import { checkStore, OPERATIONS, PLANNERS, uncutBackup, type Operation } from './operations.js';
import { makePageCacheCli } from './page-cache-cli.js';
import { describeCut, repoOf, type CutPoint, type CutRun, type FsType, type SyscallKind } from './rig.js';

export interface CampaignOptions {
  fs: FsType;
  cuts: number;
  seed: number;
  /** the coldvault CLI to run (default: this checkout's bin/coldvault.js, which runs dist/) */
  cli?: string;
  /** parent of the lab's work folder (default the OS temp dir) */
  workParent?: string;
  /** share of cuts placed after the Nth call of a kind (cut-shim.c) instead of after a delay; default 0.5 */
  syscallShare?: number;
  /** share of cut operations run by the build without the native addon (page-cache writes); default 0.25 */
  pageCacheShare?: number;
  /** only these operations (default all five) */
  operations?: readonly Operation[];
  /** check the filesystem itself (e2fsck -n / xfs_repair -n) at every remount */
  fsck?: boolean;
  /** keep a copy of a failed round's filesystem image in the work parent */
  keepFailed?: boolean;
  /** stop after this many failed rounds (default 3) */
  maxFailures?: number;
  log?: (line: string) => void;
}

export interface CutResult {
  round: number;
  op: Operation;
  point: CutPoint;
  /** the operation had ended by itself before the cut */
  afterExit: boolean;
  /** which writes the cut operation made: O_DIRECT where it can (the normal build), or page cache only */
  writes: 'direct' | 'page-cache';
  cutAtMs: number;
  /** wall time of the whole round: uncut backup, cut operation, remount, checks */
  roundMs: number;
  problems: string[];
}

export interface CampaignReport {
  fs: FsType;
  seed: number;
  results: CutResult[];
  /** problems of the final backup, verify and restore of every version */
  final: string[];
  seconds: number;
}

/** Kinds of system call worth cutting after, per operation (those listed twice, twice as likely). */
const CUT_CALLS: Record<Operation, SyscallKind[]> = {
  backup: ['rename', 'fsync', 'rename', 'fsync', 'write', 'utimensat', 'unlink', 'mkdir', 'link', 'ftruncate'],
  prune: ['rename', 'unlink', 'rename', 'unlink', 'fsync', 'write'],
  gc: ['rename', 'unlink', 'rename', 'unlink', 'link', 'fsync', 'utimensat'],
  restore: ['rename', 'fsync', 'rename', 'fsync', 'write', 'ftruncate', 'unlink', 'mkdir'],
  'catalog-rebuild': ['write', 'fsync', 'write', 'fsync', 'unlink', 'ftruncate'],
};

/** The operations in blocks of five, each block a seeded shuffle. */
export function schedule(seed: number, cuts: number, ops: readonly Operation[] = OPERATIONS): Operation[] {
  const out: Operation[] = [];
  for (let block = 0; out.length < cuts; block++) {
    const rng = seededRng(seed, 1_000_000 + block);
    const shuffled = [...ops];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j] as Operation, shuffled[i] as Operation];
    }
    out.push(...shuffled);
  }
  return out.slice(0, cuts);
}

/**
 * Where cuts fall. What the campaign learns as it goes: how long each operation takes (from uncut
 * runs and from runs that ended before their time cut), how many calls of each kind it makes (counted
 * by the shim at calibration, then from every syscall cut). A tenth of the cuts fall right at the
 * operation's end (what it reported done must be durable); the rest inside it.
 */
class Pacing {
  private readonly typical = new Map<Operation, number>();
  private readonly calls = new Map<string, number>();

  took(op: Operation, ms: number): void {
    const old = this.typical.get(op);
    this.typical.set(op, old === undefined ? ms : Math.round(0.7 * old + 0.3 * ms));
  }

  counted(op: Operation, call: SyscallKind, calls: number, stopped: boolean): void {
    const key = `${op}:${call}`;
    this.calls.set(key, stopped ? Math.max(this.calls.get(key) ?? 0, calls) : calls);
  }

  plan(op: Operation, rng: Rng, syscallShare: number): CutPoint {
    const r = rng.real();
    if (r < 0.1) return { kind: 'end' };
    const kinds = CUT_CALLS[op].filter((call) => (this.calls.get(`${op}:${call}`) ?? 0) > 0);
    if (r < 0.1 + 0.9 * syscallShare && kinds.length > 0) {
      const call = rng.pick(kinds);
      return { kind: 'syscall', call, nth: 1 + rng.int(this.calls.get(`${op}:${call}`) ?? 1) };
    }
    return { kind: 'time', ms: Math.round((this.typical.get(op) ?? 500) * (0.05 + 0.9 * rng.real())) };
  }
}

export async function runCampaign(opts: CampaignOptions): Promise<CampaignReport> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const started = Date.now();
  const ops = schedule(opts.seed, opts.cuts, opts.operations);
  log(`power-cut campaign on ${opts.fs}: seed ${opts.seed}, ${opts.cuts} cuts (replay with the same seed)`);
  const fresh = async (): Promise<PowerCutLab> => PowerCutLab.create(opts.fs, opts.workParent ?? tmpdir(), opts.cli ?? CLI);
  const pageCache = (opts.pageCacheShare ?? 0.25) > 0 ? makePageCacheCli(repoOf(opts.cli ?? CLI)) : undefined;
  let lab: PowerCutLab;
  try {
    lab = await fresh();
  } catch (err) {
    pageCache?.remove();
    throw err;
  }
  const pacing = new Pacing();
  const results: CutResult[] = [];
  let final: string[] = [];
  try {
    await calibrate(lab, pacing, seededRng(opts.seed, 999_999));
    for (let round = 0; round < ops.length; round++) {
      const result = await runRound(lab, pacing, opts, round, ops[round] as Operation, pageCache?.cli);
      results.push(result);
      log(roundLine(opts, result));
      if (result.problems.length === 0) continue;
      log(`  PROBLEMS (replay: seed ${opts.seed}, round ${round}):\n  - ${result.problems.join('\n  - ')}`);
      if (opts.keepFailed) await keepImage(lab, opts, round, log);
      if (results.filter((r) => r.problems.length > 0).length >= (opts.maxFailures ?? 3)) break;
      lab.destroy();
      lab = await fresh();
      await calibrate(lab, pacing, seededRng(opts.seed, 999_998 - round));
    }
    final = await finalCheck(lab, seededRng(opts.seed, 888_888));
    if (final.length) log(`  FINAL CHECK PROBLEMS:\n  - ${final.join('\n  - ')}`);
  } finally {
    lab.destroy();
    pageCache?.remove();
  }
  return { fs: opts.fs, seed: opts.seed, results, final, seconds: (Date.now() - started) / 1000 };
}

/**
 * Uncut runs of each operation: versions to work on, the typical time of each operation, and (one run
 * counted by the shim) how many calls of each kind it makes.
 */
async function calibrate(lab: PowerCutLab, pacing: Pacing, rng: Rng): Promise<void> {
  const timed = async (op: Operation, args: string[]): Promise<void> => {
    const t = Date.now();
    await lab.ok(args);
    pacing.took(op, Date.now() - t);
  };
  const counted = async (op: Operation, args: string[]): Promise<void> => {
    for (const [call, n] of Object.entries(await lab.countSyscalls(args))) pacing.counted(op, call as SyscallKind, n, false);
  };
  const backup = async (id: string, count = false): Promise<void> => {
    lab.mutate(id, rng);
    lab.expectBackup(id);
    await (count ? counted : timed)('backup', lab.backupArgs(id));
  };
  const prune = ['prune', '101', '--keep-last', '1', '--store', lab.store];
  const gc = ['gc', '--store', lab.store];
  const rebuild = ['catalog', 'rebuild', '--store', lab.store];
  for (const id of ['101', '102', '101']) await backup(id);
  await backup('101', true);
  await counted('prune', prune);
  lab.ageChunks();
  await counted('gc', gc);
  await timed('prune', prune);
  await timed('gc', gc);
  const restore = lab.restoreArgs('101', lab.folders('101')[0] as number, '299');
  for (const run of [counted, timed]) {
    await run('restore', restore);
    lab.dropRestored('299');
    await run('catalog-rebuild', rebuild);
  }
}

async function runRound(lab: PowerCutLab, pacing: Pacing, opts: CampaignOptions, round: number, op: Operation, pageCacheCli?: string): Promise<CutResult> {
  const started = Date.now();
  const rng = seededRng(opts.seed, round);
  const t = Date.now();
  const problems = await uncutBackup(lab, '101', rng);
  pacing.took('backup', Date.now() - t);
  const point = pacing.plan(op, rng, opts.syscallShare ?? 0.5);
  const writes = pageCacheCli && rng.real() < (opts.pageCacheShare ?? 0.25) ? 'page-cache' : 'direct';
  const cut = await cutOnce(lab, op, point, { rng, round, fsck: opts.fsck, cli: writes === 'page-cache' ? pageCacheCli : undefined });
  if (point.kind === 'syscall' && cut.run.calls !== undefined) pacing.counted(op, point.call, cut.run.calls, !cut.run.exitedBeforeCut);
  if (point.kind === 'time' && cut.run.exitedBeforeCut && cut.run.ranMs !== undefined) pacing.took(op, cut.run.ranMs);
  problems.push(...cut.problems);
  return { round, op, point, writes, afterExit: cut.run.exitedBeforeCut, cutAtMs: cut.run.cutAtMs, roundMs: Date.now() - started, problems };
}

/**
 * One operation cut at `point`, then every check: the store's (files, list, verify) and the
 * operation's own. The regression cases of test/powercut/ call this with a fixed point.
 */
export async function cutOnce(
  lab: PowerCutLab,
  op: Operation,
  point: CutPoint,
  opts: { rng: Rng; round: number; fsck?: boolean; cli?: string },
): Promise<{ run: CutRun; problems: string[] }> {
  const planned = await PLANNERS[op](lab, opts.rng, opts.round);
  const run = await lab.cut(planned.args, point, { fsck: opts.fsck ?? false, cli: opts.cli });
  const problems = run.fsck ? [`the filesystem itself is damaged after the cut:\n${run.fsck}`] : [];
  problems.push(...(await checkStore(lab)), ...(await planned.after(run)));
  if (problems.length) problems.push(`output of the cut ${op}:\n${run.stderr.trim().split('\n').slice(-12).join('\n')}`);
  return { run, problems };
}

/** After all cuts: each guest backs up, the store verifies, every version restores byte-identical, gc, verify. */
async function finalCheck(lab: PowerCutLab, rng: Rng): Promise<string[]> {
  const problems: string[] = [];
  for (const id of Object.keys(GUESTS)) problems.push(...(await uncutBackup(lab, id, rng)));
  problems.push(...(await checkStore(lab)));
  let newId = 900;
  for (const id of Object.keys(GUESTS)) {
    for (const version of lab.folders(id)) problems.push(...(await restoreAndCompare(lab, id, version, String(newId++))));
  }
  const gc = await lab.run(['gc', '--store', lab.store]);
  if (gc.code !== 0) problems.push(`final gc failed: ${gc.stderr}`);
  problems.push(...(await checkStore(lab)));
  return problems;
}

async function restoreAndCompare(lab: PowerCutLab, id: string, version: number, newId: string): Promise<string[]> {
  const r = await lab.run(lab.restoreArgs(id, version, newId));
  if (r.code !== 0) return [`restoring ${id}/${version} failed: ${r.stderr.trim().split('\n').slice(-4).join('\n')}`];
  const volumes = (JSON.parse(r.stdout) as { volumes: Record<string, string> }).volumes;
  const want = lab.expected.get(versionKey(id, version)) ?? {};
  const problems = Object.entries(volumes)
    .filter(([key, volume]) => {
      const disk = digestImage(join(lab.storageDir, 'images', newId, volume.split('/')[1] as string));
      return disk.chain !== want[key]?.chain || disk.size !== want[key]?.size;
    })
    .map(([key]) => `version ${id}/${version}, disk ${key}: the restore is not byte-identical to the source disk as backed up`);
  lab.dropRestored(newId);
  return problems;
}

async function keepImage(lab: PowerCutLab, opts: CampaignOptions, round: number, log: (line: string) => void): Promise<void> {
  const copy = join(opts.workParent ?? tmpdir(), `cv-powercut-failed-${opts.fs}-seed${opts.seed}-round${round}.img`);
  await lab.rig.unmount();
  execFileSync('cp', ['--sparse=always', lab.rig.image, copy]);
  log(`  the filesystem image is kept in ${copy}`);
}

function roundLine(opts: CampaignOptions, r: CutResult): string {
  const when = r.afterExit ? 'after it ended' : 'mid-run';
  return `power-cut ${opts.fs} seed ${opts.seed} #${r.round} ${r.op}${r.writes === 'page-cache' ? ' (page-cache build)' : ''} cut ${describeCut(r.point)} (${when}, at ${r.cutAtMs} ms): ${r.problems.length ? 'FAILED' : 'ok'} (round ${(r.roundMs / 1000).toFixed(1)} s)`;
}

/** Cuts per operation (mid-run / after the end, by syscall / by time), failures, time per round. */
export function summarize(reports: CampaignReport[]): string {
  const results = reports.flatMap((r) => r.results.map((x) => ({ ...x, fs: r.fs })));
  const rows = OPERATIONS.map((op) => {
    const xs = results.filter((x) => x.op === op);
    const by = (f: (x: (typeof xs)[number]) => boolean): number => xs.filter(f).length;
    const perFs = [...new Set(results.map((x) => x.fs))].map((fs) => `${fs} ${by((x) => x.fs === fs)}`).join(', ');
    return `| ${op} | ${xs.length} (${perFs}) | ${by((x) => !x.afterExit)} / ${by((x) => x.afterExit)} | ${by((x) => x.point.kind === 'syscall')} / ${by((x) => x.point.kind === 'time')} | ${by((x) => x.writes === 'page-cache')} | ${by((x) => x.problems.length > 0)} |`;
  });
  const rounds = results.map((x) => x.roundMs);
  const mean = rounds.length ? rounds.reduce((s, x) => s + x, 0) / rounds.length / 1000 : 0;
  const finals = reports.reduce((s, r) => s + r.final.length, 0);
  return [
    '| operation | cuts | mid-run / after its end | by syscall / by time | page-cache build | failed |',
    '|---|---|---|---|---|---|',
    ...rows,
    `${results.length} cuts, ${results.filter((x) => x.problems.length > 0).length} failed, final checks: ${finals === 0 ? 'ok' : `${finals} problems`}; ` +
      `${mean.toFixed(2)} s per round on average; ${reports.map((r) => `${r.fs} ${r.seconds.toFixed(0)} s`).join(', ')} in all`,
  ].join('\n');
}
