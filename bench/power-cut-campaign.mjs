#!/usr/bin/env node
/**
 * The power-cut campaign for release checks (issue 10, item 12): many more cuts than CI runs
 * (test/powercut/*.test.ts), with the same harness (test/helpers/power-cut/): backup, prune, gc,
 * restore and catalog rebuild on small ext4 and XFS filesystems on loop devices, each cut at a seeded
 * moment by shutting the filesystem down without flushing its log, then mounted again and checked.
 *
 *   node bench/power-cut-campaign.mjs --cuts 500 --seed 42        (as root; about 3 s per cut)
 *
 * Prints one line per cut, then the cuts per operation and filesystem and the failures; exit 1 when
 * any cut failed. A failure names its seed and round: the same --seed replays the same sequence
 * (syscall cuts fall at the same place again; time cuts depend on the machine's speed).
 */
import { mkdirSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync, spawn } from 'node:child_process';
import { build } from 'rolldown';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    cuts: { type: 'string', default: '500' },
    seed: { type: 'string' },
    fs: { type: 'string', default: 'ext4,xfs' },
    'syscall-share': { type: 'string', default: '0.5' },
    operations: { type: 'string' },
    fsck: { type: 'boolean', default: false },
    'keep-failed': { type: 'boolean', default: false },
    'max-failures': { type: 'string', default: '10' },
    sequential: { type: 'boolean', default: false },
    child: { type: 'boolean', default: false },
    work: { type: 'string' },
    json: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (opt.help) {
  console.log(`usage: node bench/power-cut-campaign.mjs [--cuts N] [--seed N] [--fs ext4,xfs] [--operations backup,prune,gc,restore,catalog-rebuild]
        [--syscall-share 0.5] [--fsck] [--keep-failed] [--max-failures N] [--sequential] [--work DIR] [--json FILE] [--no-build]
  --cuts           cuts in all, split evenly over the filesystems (default 500)
  --seed           replays a campaign (default: from the clock; printed)
  --syscall-share  share of cuts placed after the Nth call of a kind (an LD_PRELOAD shim) rather than after a delay
  --fsck           check the filesystem itself (e2fsck -n / xfs_repair -n) at every remount
  --keep-failed    keep a copy of the filesystem image of each failed round in the work dir
  --sequential     one filesystem after the other (default: side by side, one process each)`);
  process.exit(0);
}
if (process.getuid?.() !== 0) {
  console.error('power-cut campaign: run as root (it makes loop devices and filesystems)');
  process.exit(2);
}

const seed = Number(opt.seed ?? Date.now() % 2_147_483_647) >>> 0 || 1;
const filesystems = opt.fs.split(',').filter(Boolean);
const total = Number(opt.cuts);
if (!Number.isInteger(total) || total < 1 || filesystems.some((f) => f !== 'ext4' && f !== 'xfs')) {
  console.error('power-cut campaign: --cuts takes a positive integer, --fs ext4 and/or xfs');
  process.exit(2);
}

if (!opt['no-build'] && !opt.child) execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
const harness = await loadHarness(!opt.child);
// whatever ends the process: our loop devices (only ours) are unmounted and detached, our CLI copies removed
process.on('exit', () => harness.cleanupPowerCut());
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));
const work = opt.work ?? join('/var/tmp', 'coldvault-power-cut');
mkdirSync(work, { recursive: true });

const cutsOf = (i) => Math.floor(total / filesystems.length) + (i < total % filesystems.length ? 1 : 0);
const campaign = (fs, cuts) =>
  harness.runCampaign({
    fs,
    seed,
    cuts,
    cli: join(REPO, 'bin', 'coldvault.js'),
    workParent: work,
    syscallShare: Number(opt['syscall-share']),
    operations: opt.operations?.split(','),
    fsck: opt.fsck,
    keepFailed: opt['keep-failed'],
    maxFailures: Number(opt['max-failures']),
  });
if (!opt.child)
  console.log(
    `power-cut campaign: ${total} cuts on ${filesystems.join(' and ')}, seed ${seed} (node bench/power-cut-campaign.mjs --seed ${seed} --cuts ${total} replays it)`,
  );
const reports = [];
if (filesystems.length === 1 || opt.sequential) for (const [i, fs] of filesystems.entries()) reports.push(await campaign(fs, cutsOf(i)));
else reports.push(...(await Promise.all(filesystems.map((fs, i) => inChild(fs, cutsOf(i))))));

if (opt.json) await writeFile(opt.json, JSON.stringify({ seed, reports }, null, 2));
const failed = reports.flatMap((r) => r.results.filter((x) => x.problems.length > 0).map((x) => ({ fs: r.fs, ...x })));
if (!opt.child) {
  console.log(`\n${harness.summarize(reports)}`);
  for (const f of failed) console.log(`\nFAILED: ${f.fs} seed ${seed} round ${f.round}, ${f.op} cut ${JSON.stringify(f.point)}:\n- ${f.problems.join('\n- ')}`);
}
// exit explicitly: rolldown's worker threads would keep the process alive
process.exit(failed.length > 0 || reports.some((r) => r.final.length > 0) ? 1 : 0);

/**
 * One filesystem's campaign in a child process: side by side, and a campaign's synchronous checks
 * never hold up the timers that place the other's time cuts.
 */
async function inChild(fs, cuts) {
  const json = join(work, `report-${fs}-${process.pid}.json`);
  const pass = ['syscall-share', 'max-failures', 'work'].flatMap((k) => (opt[k] === undefined ? [] : [`--${k}`, String(opt[k])]));
  for (const k of ['fsck', 'keep-failed']) if (opt[k]) pass.push(`--${k}`);
  if (opt.operations) pass.push('--operations', opt.operations);
  const args = [fileURLToPath(import.meta.url), '--child', '--fs', fs, '--cuts', String(cuts), '--seed', String(seed), '--json', json, ...pass];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  await new Promise((resolve) => child.on('close', resolve));
  const report = JSON.parse(await readFile(json, 'utf8')).reports[0];
  await rm(json, { force: true });
  return report;
}

/**
 * The harness is TypeScript (shared with the tests): bundled for node with rolldown, npm packages
 * external, into node_modules/.cache (a child process of the campaign imports the parent's bundle).
 */
async function loadHarness(bundle) {
  const dir = join(REPO, 'node_modules', '.cache', 'coldvault-power-cut');
  if (bundle) {
    await build({
      input: join(REPO, 'test', 'helpers', 'power-cut', 'index.ts'),
      platform: 'node',
      external: (id) => !id.startsWith('.') && !id.startsWith('/'),
      resolve: { extensionAlias: { '.js': ['.ts', '.js'] } },
      logLevel: 'warn',
      output: { dir, format: 'esm', entryFileNames: 'harness.mjs' },
    });
  }
  return import(pathToFileURL(join(dir, 'harness.mjs')).href);
}
