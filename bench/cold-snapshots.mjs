#!/usr/bin/env node
/**
 * The benchmarks of issue 11 (cold snapshots, changed-extent nightlies, downtime), in one run, as
 * root: `node bench/cold-snapshots.mjs [--quick]` (see bench/README.md). Makes its fixtures at run
 * time in a scratch folder (default /var/tmp/coldvault-cold-snapshots, removed at the end, loop
 * devices detached, guests killed), then:
 *  1. nightly backup cost on XFS (lib/cold-nightly.mjs): full backup with and without snapshots,
 *     nightlies of the unchanged disk and after 1% rewritten, the read-and-hash reference, borg;
 *  2. downtime of the tiny real QEMU guest on XFS and ext4 (lib/cold-downtime.mjs);
 * and writes the block "cold-snapshots" of bench/RESULTS.md (lib/cold-report.mjs, lib/sections.mjs).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { sh } from './lib/exec.mjs';
import { benchDowntime } from './lib/cold-downtime.mjs';
import { benchNightly } from './lib/cold-nightly.mjs';
import { renderColdSnapshots } from './lib/cold-report.mjs';
import { freeGiB, loadAverage, machineInfo } from './lib/machine.mjs';
import { clearScratch } from './lib/scratch.mjs';
import { replaceBlock } from './lib/sections.mjs';

const REPO = resolve(import.meta.dirname, '..');
const GiB = 2 ** 30;
const MiB = 2 ** 20;
const started = Date.now();

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    dir: { type: 'string', default: '/var/tmp/coldvault-cold-snapshots' },
    out: { type: 'string', default: join(REPO, 'bench', 'RESULTS.md') },
    json: { type: 'string' },
    rounds: { type: 'string' },
    'full-rounds': { type: 'string' },
    only: { type: 'string', default: 'nightly,downtime' },
    'skip-large-guest': { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    'from-json': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (opt.help) {
  console.log(`usage: node bench/cold-snapshots.mjs [--quick] [--only nightly,downtime] [--rounds N] [--full-rounds N]
        [--skip-large-guest] [--dir DIR] [--out RESULTS.md] [--json FILE] [--no-build] [--from-json FILE]
  --quick             small sizes (2 GiB disk / 1 GiB data, tiny guest 1 GiB / 256 MiB), about a minute
  --rounds N          rounds of the cheap steps: unchanged nightly, 1% nightly + reference (default 3, quick 2)
  --full-rounds N     rounds of the full backups, off and auto alternating (default 3, quick 1)
  --skip-large-guest  no downtime run with the 32 GiB guest disk (16 GiB of data)
  --dir               scratch folder (default /var/tmp/coldvault-cold-snapshots; removed at the end)
  --from-json FILE    measure nothing: write the block again from the --json FILE of an earlier run`);
  process.exit(0);
}

const fail = (msg) => {
  process.stderr.write(`cold-snapshots bench: ${msg}\n`);
  process.exit(2);
};
const log = (msg) => process.stderr.write(`[cold ${((Date.now() - started) / 1000).toFixed(0).padStart(5)}s] ${msg}\n`);
const positive = (v, name, dflt) => {
  const n = Number(v ?? dflt);
  if (!Number.isInteger(n) || n < 1) fail(`--${name} ${v}: expected a positive integer`);
  return n;
};

const quick = opt.quick;
const rounds = positive(opt.rounds, 'rounds', quick ? 2 : 3);
const fullRounds = positive(opt['full-rounds'], 'full-rounds', quick ? 1 : 3);
const only = new Set(opt.only.split(',').map((s) => s.trim()));
for (const p of only) if (p !== 'nightly' && p !== 'downtime') fail(`--only: unknown '${p}' (expected nightly, downtime)`);
const dir = resolve(opt.dir);
const sizes = quick ? { disk: 2 * GiB, data: 1 * GiB } : { disk: 32 * GiB, data: 16 * GiB };
const small = quick ? { label: 'small', diskBytes: 1 * GiB, dataBytes: 256 * MiB } : { label: 'small', diskBytes: 4 * GiB, dataBytes: 2 * GiB };
const large = { label: 'large', diskBytes: 32 * GiB, dataBytes: 16 * GiB };
const skippedVariants = [];
const variants = [];
for (const v of quick || opt['skip-large-guest'] ? [small] : [small, large])
  for (const fs of ['xfs', 'ext4']) variants.push({ ...v, fs, seed: 2026 + variants.length });
if (quick) skippedVariants.push('the 32 GiB guest disk (--quick)');
else if (opt['skip-large-guest']) skippedVariants.push('the 32 GiB guest disk (--skip-large-guest)');

function preflight() {
  if (process.getuid?.() !== 0) fail('run it as root (loop devices, mkfs, mount, drop_caches)');
  for (const cmd of ['losetup', 'mkfs.xfs', 'mkfs.ext4', 'borg', 'qemu-system-x86_64', '/usr/bin/time']) {
    if (sh('/bin/sh', ['-c', `command -v ${cmd}`], { allowFail: true }) === '')
      fail(`${cmd} is missing (xfsprogs, e2fsprogs, borgbackup, qemu-system-x86, time)`);
  }
  mkdirSync(dir, { recursive: true });
  const needGiB = Math.max(
    only.has('nightly') ? (2 * sizes.data) / GiB + 4 : 0,
    only.has('downtime') ? (2 * Math.max(...variants.map((v) => v.dataBytes))) / GiB + 4 : 0,
  );
  if (freeGiB(dir) < needGiB) fail(`${dir} has ${freeGiB(dir).toFixed(0)} GiB free, the bench needs about ${needGiB.toFixed(0)} GiB (--quick needs less)`);
  if (!opt['no-build']) {
    log('building coldvault (npm run build)');
    sh('npm', ['run', 'build'], { cwd: REPO });
  }
  if (!existsSync(join(REPO, 'build', 'Release', 'coldvault_native.node')))
    fail('the native addon is not built (npm run build:native): no FIEMAP, no changed-extent nightlies');
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    clearScratch(dir);
    process.exit(130);
  });
}

async function main() {
  clearScratch(dir); // what an interrupted run left
  preflight();
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const cli = join(REPO, 'bin', 'coldvault.js');
  const r = { quick, startedAt: new Date(started).toISOString(), machine: machineInfo(dir), notes: [], skippedVariants };
  r.machine.coldvault = `${sh('git', ['-C', REPO, 'describe', '--always', '--dirty'])}, node ${process.version}`;
  r.machine.borg = sh('borg', ['--version']);
  r.machine.qemu = sh('qemu-system-x86_64', ['--version']).split('\n')[0];
  if (only.has('nightly')) r.nightly = await benchNightly({ repo: REPO, cli, scratch: dir, tmp, sizes, rounds, fullRounds, log });
  if (only.has('downtime')) r.downtime = await benchDowntime({ repo: REPO, cli, scratch: dir, tmp, variants, runs: 2, log });
  r.machine['load after'] = `load average ${loadAverage()}`;
  r.totalSeconds = (Date.now() - started) / 1000;
  r.command = `node bench/cold-snapshots.mjs ${process.argv.slice(2).join(' ')}`.trim();
  replaceBlock(resolve(opt.out), 'cold-snapshots', renderColdSnapshots(r));
  if (opt.json) writeFileSync(opt.json, `${JSON.stringify(r, null, 2)}\n`);
  log(`wrote ${opt.out} (total ${(r.totalSeconds / 60).toFixed(1)} min)`);
}

if (opt['from-json']) {
  replaceBlock(resolve(opt.out), 'cold-snapshots', renderColdSnapshots(JSON.parse(readFileSync(opt['from-json'], 'utf8'))));
  process.exit(0);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`\ncold-snapshots bench FAILED: ${err?.stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  clearScratch(dir);
}
