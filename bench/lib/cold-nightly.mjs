/**
 * Part 1 of bench/cold-snapshots.mjs: the cost of backups of a big sparse raw disk on XFS (reflink=1,
 * on a loop device), through the real CLI (`coldvault backup 101 --guests-dir --storage local=... --json`,
 * hypervisor none: the guest counts as stopped), with the datastore and borg's repository outside the
 * XFS (in the scratch folder). The page cache is dropped before every timed step. Steps:
 *  (b) full backup with --snapshot off (the disk is read), fresh datastore;  (a) the same with
 *  --snapshot auto (its reflink snapshot is read and kept as the base); (c) nightlies of the unchanged
 *  disk; (d) per round, 1% of the data regions rewritten in place, then the nightly; the reference:
 *  reading those regions from the kept snapshot and SHA-256 (hash-regions.mjs, its own process);
 *  the start-up floor: `coldvault --version` and `coldvault list --json`, cold;
 *  (e) borg create --chunker-params fixed,4194304 of round 1's nightly, after a first archive of the
 *  base state (both from reflink clones of the disk, at the same path in the archive).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dropCaches, measure, sh } from './exec.mjs';
import { REGION } from './images.mjs';
import { mountLoopFs } from './loopfs.mjs';
import { busySeconds, othersShare } from './machine.mjs';
import { changedRegions, planDisk, rewriteRegions, writeDisk } from './sparse-disk.mjs';

const GiB = 2 ** 30;
const VMID = '101';
const BORG_CREATE = ['create', '--chunker-params', 'fixed,4194304', '--compression', 'zstd,3', '--sparse'];

export async function benchNightly({ repo, cli, scratch, tmp, sizes, rounds, fullRounds, log }) {
  const root = join(scratch, 'nightly');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const xfs = mountLoopFs({ kind: 'xfs', image: join(root, 'xfs.img'), mnt: join(root, 'vz'), sizeBytes: sizes.disk + sizes.data + 4 * GiB });
  try {
    const ctx = makeSite({ root, xfs, cli, tmp, repo });
    const plan = planDisk({ regions: sizes.disk / REGION, dataRegions: sizes.data / REGION, seed: 1111 });
    log(`nightly: writing the ${sizes.disk / GiB} GiB disk with ${sizes.data / GiB} GiB of data on XFS`);
    const t0 = Date.now();
    writeDisk(ctx.disk, plan);
    log(`nightly: disk written in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const r = { plan: { size: plan.size, dataBytes: plan.data.length * REGION, dataRegions: plan.data.length }, steps: {} };
    await fulls(ctx, r, fullRounds, log);
    r.steps.unchanged = [];
    for (let i = 0; i < rounds; i++) r.steps.unchanged.push(await ctx.backup('auto', 'unchanged nightly'));
    log(`nightly: unchanged ${r.steps.unchanged.map((m) => m.seconds.toFixed(2)).join(' ')} s`);
    await startupFloor(ctx, r, rounds);
    sh('cp', ['--reflink=always', ctx.disk, ctx.borgSrc('base')]);
    await changedNightlies(ctx, r, plan, rounds, log);
    rmSync(ctx.store, { recursive: true, force: true }); // room for borg's repository
    r.borg = await borg(ctx, log);
    return r;
  } finally {
    xfs.cleanup();
    rmSync(root, { recursive: true, force: true });
  }
}

function makeSite({ root, xfs, cli, tmp }) {
  const guests = join(root, 'guests');
  mkdirSync(guests, { recursive: true });
  mkdirSync(join(xfs.mnt, 'images', VMID), { recursive: true });
  writeFileSync(join(guests, `${VMID}.conf`), `name: bench\nscsi0: local:${VMID}/vm-${VMID}-disk-0.raw\n`);
  const ctx = { root, xfs, tmp, guests, store: join(root, 'store'), disk: join(xfs.mnt, 'images', VMID, `vm-${VMID}-disk-0.raw`) };
  ctx.cv = (args) => measure(process.execPath, [cli, ...args], { tmp });
  ctx.borgSrc = (name) => {
    mkdirSync(join(xfs.mnt, 'borg-src', name), { recursive: true });
    return join(xfs.mnt, 'borg-src', name, 'disk.raw');
  };
  ctx.backup = (snapshot, what) =>
    timed(
      what,
      () => ctx.cv(['backup', VMID, '--store', ctx.store, '--guests-dir', guests, '--storage', `local=${xfs.mnt}`, '--snapshot', snapshot, '--json']),
      (m) => {
        const [res] = JSON.parse(m.stdout);
        if (!res?.ok) throw new Error(`coldvault backup (${what}) did not report ok: ${m.stdout}\n${m.stderr}`);
        const reads = res.reads?.[0] ?? {};
        return { inProcess: res.seconds, fileReadBytes: reads.fileReadBytes, baseBytes: reads.baseBytes, baseVersion: reads.baseVersion, version: res.version };
      },
    );
  return ctx;
}

/** Drops the page cache, runs the step, and notes its time, CPU, RSS, the others' share of the CPUs and extra facts. */
export async function timed(what, run, extra = () => ({})) {
  dropCaches();
  const busy0 = busySeconds();
  const m = await run();
  const others = othersShare(busy0, busySeconds(), m.cpuSeconds, m.seconds);
  return { what, seconds: m.seconds, cpuSeconds: m.cpuSeconds, rssKiB: m.rssKiB, others, ...extra(m) };
}

async function freshStore(ctx) {
  rmSync(ctx.store, { recursive: true, force: true });
  const snaps = join(ctx.xfs.mnt, '.coldvault-snapshots', VMID);
  rmSync(snaps, { recursive: true, force: true }); // bases of earlier datastores
  await ctx.cv(['datastore', 'init', ctx.store]);
}

/** (b) off and (a) auto, alternating, `fullRounds` times each; the last auto's datastore and base stay. */
async function fulls(ctx, r, fullRounds, log) {
  r.steps.fullOff = [];
  r.steps.fullAuto = [];
  for (let i = 0; i < fullRounds; i++) {
    await freshStore(ctx);
    r.steps.fullOff.push(await ctx.backup('off', 'full, --snapshot off'));
    await freshStore(ctx);
    r.steps.fullAuto.push(await ctx.backup('auto', 'full, --snapshot auto'));
    log(`nightly: full off ${r.steps.fullOff.at(-1).seconds.toFixed(1)} s, full auto ${r.steps.fullAuto.at(-1).seconds.toFixed(1)} s`);
  }
  r.storeBytes = Number(sh('du', ['-sb', ctx.store]).split(/\s/)[0]);
}

/** What any coldvault command costs with a cold page cache: `--version` (start-up), `list --json` (start-up, open the datastore and catalog). */
async function startupFloor(ctx, r, rounds) {
  r.steps.version = [];
  r.steps.list = [];
  for (let i = 0; i < rounds; i++) {
    r.steps.version.push(await timed('coldvault --version', () => ctx.cv(['--version'])));
    r.steps.list.push(await timed('coldvault list', () => ctx.cv(['list', VMID, '--store', ctx.store, '--json'])));
  }
}

const storeId = (ctx) => JSON.parse(readFileSync(join(ctx.store, 'coldvault-datastore.json'), 'utf8')).id;

/** (d): per round, 1% rewritten, the nightly, then the reference read-and-hash of those regions from the kept snapshot (cold, then warm). */
async function changedNightlies(ctx, r, plan, rounds, log) {
  r.steps.changed = [];
  r.steps.reference = [];
  r.steps.referenceWarm = [];
  const hashCli = join(import.meta.dirname, 'hash-regions.mjs');
  for (let round = 1; round <= rounds; round++) {
    const regions = changedRegions(plan, 0.01, round);
    rewriteRegions(ctx.disk, plan, regions, round);
    if (round === 1) sh('cp', ['--reflink=always', ctx.disk, ctx.borgSrc('nightly')]);
    const step = await ctx.backup('auto', `nightly, ${regions.length} regions rewritten`);
    step.changedBytes = regions.length * REGION;
    r.steps.changed.push(step);
    const base = join(ctx.xfs.mnt, '.coldvault-snapshots', VMID, `scsi0.base-${storeId(ctx)}`);
    const hash = () => measure(process.execPath, [hashCli, base, regions.join(',')], { tmp: ctx.tmp });
    const inner = (m) => ({ inProcess: JSON.parse(m.stdout).seconds, bytes: JSON.parse(m.stdout).bytes });
    r.steps.reference.push(await timed('read + SHA-256 of the changed regions, cold', hash, inner));
    const warm = await hash(); // right after: the regions are in the page cache
    r.steps.referenceWarm.push({ seconds: warm.seconds, ...inner(warm) });
    log(
      `nightly: round ${round}: ${regions.length} regions, nightly ${step.seconds.toFixed(2)} s (read ${(step.fileReadBytes / 2 ** 20).toFixed(0)} MiB), reference ${r.steps.reference.at(-1).inProcess.toFixed(2)} s in-process`,
    );
  }
  r.snapshotFiles = readdirSync(join(ctx.xfs.mnt, '.coldvault-snapshots', VMID));
}

/** (e): borg, unencrypted repository in the scratch folder; first archive of the base state, then round 1's nightly. */
async function borg(ctx, log) {
  const env = {
    BORG_BASE_DIR: join(ctx.root, 'borg-home'),
    BORG_REPO: join(ctx.root, 'borg-repo'),
    BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
    BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
  };
  const run = (args, cwd) => measure('borg', args, { tmp: ctx.tmp, env, cwd });
  await run(['init', '--encryption', 'none']);
  const archive = (name) => timed(`borg create (${name})`, () => run([...BORG_CREATE, `::${name}`, 'disk.raw'], join(ctx.xfs.mnt, 'borg-src', name)));
  const first = await archive('base');
  log(`nightly: borg first archive ${first.seconds.toFixed(1)} s`);
  const nightly = await archive('nightly');
  log(`nightly: borg nightly ${nightly.seconds.toFixed(1)} s`);
  const repoBytes = Number(sh('du', ['-sb', env.BORG_REPO]).split(/\s/)[0]);
  rmSync(env.BORG_REPO, { recursive: true, force: true });
  return { first, nightly, repoBytes, command: `borg ${BORG_CREATE.join(' ')} ::nightly disk.raw` };
}
