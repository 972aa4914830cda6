#!/usr/bin/env node
/**
 * What encryption at rest costs (issue 13), as root: `node bench/encryption.mjs [--quick]` (see
 * bench/README.md). On the bench image of lib/images.mjs (2 GiB of 4 MiB regions: 55% zero, half of
 * them holes, 20% random, 25% log-like text; --quick 512 MiB) and its "next night" (2% of the regions
 * rewritten), unencrypted and encrypted (`--encrypt KEYFILE`, a key made with `--kdf none`: no
 * passphrase, so no KDF in any timing) side by side, interleaved step by step, the order swapped every
 * round (plain first in odd rounds, encrypted first in even ones), per round:
 *   full backup into a fresh datastore each (`--snapshot off`), nightly backup of the next night into
 *   the same datastore, restore of the full version (SHA-256-checked against the image);
 * every step a whole `coldvault` process under GNU time (wall, CPU, peak RSS), the image's data read
 * into the page cache before every backup (warm, as bench/run.mjs). Writes the block "encryption" of
 * bench/RESULTS.md: the issue's targets (encrypted at most 10% slower for full, nightly and restore;
 * peak RSS unchanged and at most 200 MiB) met or missed, the medians and ratios, store sizes, the
 * machine and how busy others kept it. With --profile, one more round under `node --cpu-prof`
 * (lib/cpu-profile.mjs): self time per function and area, plain against encrypted. With --no-native,
 * every coldvault process runs with COLDVAULT_NATIVE=off (node:crypto's seal, holes read) and the block
 * "encryption-no-native" is written instead.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { makeBenchImages, sha256File, warmImage } from './lib/cluster-steps.mjs';
import { summarizeProfiles } from './lib/cpu-profile.mjs';
import { measure, sh } from './lib/exec.mjs';
import { REGION } from './lib/images.mjs';
import { busySeconds, freeGiB, loadAverage, machineInfo, othersShare } from './lib/machine.mjs';
import { median } from './lib/report.mjs';
import { replaceBlock } from './lib/sections.mjs';
import { linkSource, makeSite, NEW_ID, VMID } from './lib/tools.mjs';
import { benchOptions, commonOptions } from './lib/bench-options.mjs';

const REPO = resolve(import.meta.dirname, '..');
const CLI = join(REPO, 'bin', 'coldvault.js');
const MiB = 2 ** 20;
const started = Date.now();

const { values: opt } = parseArgs({
  options: {
    ...commonOptions(REPO, '/var/tmp/coldvault-encryption-bench'),
    profile: { type: 'boolean', default: false },
    'no-native': { type: 'boolean', default: false },
  },
});

if (opt.help) {
  console.log(`usage: node bench/encryption.mjs [--quick] [--rounds N] [--profile] [--no-native] [--dir DIR] [--out RESULTS.md] [--json FILE] [--no-build] [--from-json FILE]
  --quick          a 512 MiB image, 1 round (checks the script; its figures say nothing about the targets)
  --rounds N       rounds (default 4; quick 1); each has a fresh datastore per variant; the tables show medians;
                   an even number balances the order (each variant goes first in half of the rounds)
  --profile        one more round under node --cpu-prof, plain and encrypted: where the CPU goes
  --no-native      every coldvault process with COLDVAULT_NATIVE=off (no addon: node:crypto seals in slices, holes
                   are read); writes the block "encryption-no-native" instead of "encryption"
  --dir            scratch folder (default /var/tmp/coldvault-encryption-bench; removed at the end)
  --from-json FILE measure nothing: write the block again from the --json FILE of an earlier run`);
  process.exit(0);
}

const { fail, log, quick, rounds, regions, dir } = benchOptions('encryption', opt, started, 4);
const tmp = join(dir, 'tmp');
const VARIANTS = ['plain', 'encrypted'];
if (opt['no-native']) process.env.COLDVAULT_NATIVE = 'off'; // every coldvault process inherits it
const BLOCK = opt['no-native'] ? 'encryption-no-native' : 'encryption';
const STEPS = ['full', 'nightly', 'restore'];

// ---------------------------------------------------------------------------------------------
// Setup

function preflight() {
  if (process.getuid?.() !== 0) fail('run it as root (as the other benches: the datastores and images under /var/tmp)');
  if (sh('/bin/sh', ['-c', 'command -v /usr/bin/time'], { allowFail: true }) === '') fail('/usr/bin/time is missing (apt-get install time)');
  mkdirSync(tmp, { recursive: true });
  const needGiB = ((regions * REGION) / 2 ** 30) * 4 + 1;
  if (freeGiB(dir) < needGiB) fail(`${dir} has ${freeGiB(dir).toFixed(0)} GiB free, the bench needs about ${needGiB.toFixed(0)} GiB`);
  if (!opt['no-build']) {
    log('building coldvault (npm run build)');
    sh('npm', ['run', 'build'], { cwd: REPO });
    if (!addonSeals()) {
      log('building the native addon (npm run build:native): its in-place AES-256-GCM');
      sh('npm', ['run', 'build:native'], { cwd: REPO, allowFail: true });
    }
  }
}

/** Whether the built addon has the in-place seal the encrypted codec uses (native/seal.c). */
function addonSeals() {
  try {
    return typeof createRequire(import.meta.url)(join(REPO, 'build', 'Release', 'coldvault_native.node')).sealInto === 'function';
  } catch {
    return false;
  }
}

/** How the encrypted variant's chunks are sealed in this run. */
function sealPath() {
  if (process.env.COLDVAULT_NATIVE === 'off') return 'node:crypto in 128 KiB slices (COLDVAULT_NATIVE=off: no addon, so holes are read too)';
  return addonSeals()
    ? 'the native addon (native/seal.c: OpenSSL of the node binary, in place)'
    : 'node:crypto in 128 KiB slices (the native addon is not built)';
}

const makeImages = () => makeBenchImages(dir, regions);

// ---------------------------------------------------------------------------------------------
// Measured steps

/** The two datastores of a round and how each variant calls coldvault. */
function variantsOf(site, keyFile) {
  const v = (name, store, backupExtra, restoreExtra) => ({
    name,
    store,
    site: ['--store', store, '--guests-dir', site.guests, '--storage', `local=${site.vz}`],
    backupExtra,
    restoreExtra,
  });
  return {
    plain: v('plain', join(dir, 'store-plain'), [], []),
    encrypted: v('encrypted', join(dir, 'store-encrypted'), ['--encrypt', keyFile], ['--keyfile', keyFile]),
  };
}

let faultFiles = 0;

/**
 * `coldvault ARGS` measured (wall, CPU, peak RSS) with how much of the machine others used meanwhile,
 * and its minor page faults (a second GNU time inside the measured one, `-f %R`: fresh memory touched).
 */
async function coldvault(args, nodeArgs = []) {
  const faults = join(tmp, `faults-${faultFiles++}.txt`);
  const busy0 = busySeconds();
  const m = await measure('/usr/bin/time', ['-f', '%R', '-o', faults, process.execPath, ...nodeArgs, CLI, ...args], { tmp });
  const minorFaults = Number(readFileSync(faults, 'utf8').trim().split('\n').pop());
  rmSync(faults, { force: true });
  return {
    seconds: m.seconds,
    cpuSeconds: m.cpuSeconds,
    sysSeconds: m.sysSeconds,
    rssKiB: m.rssKiB,
    minorFaults,
    others: othersShare(busy0, busySeconds(), m.cpuSeconds, m.seconds),
    stdout: m.stdout,
  };
}

const duBytes = (path) => Number(sh('du', ['-sb', path]).split(/\s/)[0]);

async function backup(variant, site, image, plan, nodeArgs) {
  linkSource(site, image);
  warmImage(image, plan);
  sh('sync');
  const m = await coldvault(['backup', VMID, ...variant.site, '--snapshot', 'off', ...variant.backupExtra, '--json'], nodeArgs);
  const [r] = JSON.parse(m.stdout);
  if (!r?.ok) throw new Error(`coldvault backup (${variant.name}) did not report ok: ${m.stdout}`);
  return { ...m, stdout: undefined, version: r.version, storeBytes: duBytes(variant.store) };
}

function clearRestore(site) {
  rmSync(join(site.guests, `${NEW_ID}.conf`), { force: true });
  rmSync(join(site.vz, 'images', NEW_ID), { recursive: true, force: true });
}

async function restore(variant, site, images, nodeArgs) {
  clearRestore(site);
  sh('sync');
  const m = await coldvault(['restore', VMID, '--version', '1', '--new-id', NEW_ID, ...variant.site, ...variant.restoreExtra, '--json'], nodeArgs);
  const volume = JSON.parse(m.stdout).volumes?.scsi0 ?? '';
  const match = /^local:(\d+)\/(.+)$/.exec(volume);
  if (!match) throw new Error(`coldvault restore (${variant.name}): unexpected volume '${volume}' in ${m.stdout}`);
  const sha = await sha256File(join(site.vz, 'images', match[1], match[2]));
  if (sha !== images.fullSha) throw new Error(`RESTORE MISMATCH (${variant.name}): SHA-256 ${sha}, the image has ${images.fullSha}`);
  clearRestore(site);
  return { ...m, stdout: undefined, sha256ok: true };
}

/**
 * One round: each step for both variants back to back (in `order`), then the next step: the two
 * figures of a step are measured seconds apart, under the same load of the shared machine.
 */
async function round(order, variants, site, images, nodeArgsOf = () => []) {
  const out = { order: order.join(' first, ') };
  for (const name of order) {
    rmSync(variants[name].store, { recursive: true, force: true });
    sh(process.execPath, [CLI, 'datastore', 'init', variants[name].store]);
  }
  for (const step of STEPS) {
    for (const name of order) {
      const v = variants[name];
      const nodeArgs = nodeArgsOf(name, step);
      const r =
        step === 'restore'
          ? await restore(v, site, images, nodeArgs)
          : await backup(v, site, step === 'full' ? images.full : images.nightly, images.plan, nodeArgs);
      (out[name] ??= {})[step] = r;
      log(
        `  ${step.padEnd(7)} ${name.padEnd(9)} ${r.seconds.toFixed(2)} s, CPU ${r.cpuSeconds.toFixed(2)} s (sys ${r.sysSeconds.toFixed(2)}), peak RSS ${(r.rssKiB / 1024).toFixed(0)} MiB, ${(r.minorFaults / 1000).toFixed(0)}k minor faults, others ${(100 * r.others).toFixed(0)}%`,
      );
    }
  }
  for (const name of order) rmSync(variants[name].store, { recursive: true, force: true });
  return out;
}

/** One more round with every coldvault process under --cpu-prof (each step and variant its own folder). */
async function profileRound(variants, site, images) {
  const profDir = join(dir, 'profiles');
  const dirOf = (name, step) => join(profDir, `${step}-${name}`);
  const r = await round(VARIANTS, variants, site, images, (name, step) => ['--cpu-prof', `--cpu-prof-dir=${dirOf(name, step)}`]);
  const out = {};
  for (const name of VARIANTS) {
    for (const step of STEPS) {
      const d = dirOf(name, step);
      const files = readdirSync(d)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => join(d, f));
      (out[name] ??= {})[step] = { seconds: r[name][step].seconds, cpuSeconds: r[name][step].cpuSeconds, profile: summarizeProfiles(files, 10) };
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Report

const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const pct = (x, d = 0) => `${f(100 * x, d)}%`;
const met = (ok) => (ok ? '**met**' : '**missed**');
const cell = (xs, d = 2) => (xs.length === 1 ? f(xs[0], d) : `${f(median(xs), d)} [${f(Math.min(...xs), d)}–${f(Math.max(...xs), d)}]`);
const size = (b) => (b >= 2 ** 30 ? `${f(b / 2 ** 30, 2)} GiB` : `${f(b / MiB, 1)} MiB`);
const series = (r, name, step, key) => r.roundsData.map((x) => x[name][step][key]);
const med = (r, name, step, key) => median(series(r, name, step, key));
const LABEL = {
  full: 'full backup (fresh store, --snapshot off)',
  nightly: 'nightly backup (2% of the regions rewritten)',
  restore: 'restore of the full version',
};
/** peak RSS "unchanged": the encrypted median at most this much above the plain one (RSS varies by a few MiB run to run) */
const RSS_SLACK = 0.1;

function targets(r) {
  const rows = [];
  for (const step of STEPS) {
    const p = med(r, 'plain', step, 'seconds');
    const e = med(r, 'encrypted', step, 'seconds');
    const perRound = r.roundsData.map((x) => f(x.encrypted[step].seconds / x.plain[step].seconds)).join(', ');
    rows.push([`${LABEL[step]}: encrypted at most 10% slower`, `${f(e / p, 3)} (encrypted ${f(e)} s, plain ${f(p)} s; per round ${perRound})`, e / p <= 1.1]);
  }
  for (const [label, steps] of [
    ['backup', ['full', 'nightly']],
    ['restore', ['restore']],
  ]) {
    const peak = (name) => Math.max(...steps.map((s) => med(r, name, s, 'rssKiB') / 1024));
    const [p, e] = [peak('plain'), peak('encrypted')];
    rows.push([
      `peak RSS of ${label}: encrypted unchanged (at most ${pct(RSS_SLACK)} above plain) and at most 200 MiB`,
      `encrypted ${f(e, 0)} MiB, plain ${f(p, 0)} MiB (${e >= p ? '+' : ''}${f(e - p, 0)} MiB, ratio ${f(e / p, 3)}; medians, largest of ${steps.join(' and ')})`,
      e <= p * (1 + RSS_SLACK) && e <= 200,
    ]);
  }
  return rows;
}

function stepRows(r) {
  const img = r.image.size;
  const rows = [];
  for (const step of STEPS) {
    for (const name of VARIANTS) {
      const s = (key) => series(r, name, step, key);
      const store = step === 'restore' ? '—' : size(median(s('storeBytes')));
      const rss = s('rssKiB').map((k) => k / 1024);
      const faults = s('minorFaults').map((n) => n / 1000);
      rows.push(
        `| ${LABEL[step]} | ${name} | ${cell(s('seconds'))} | ${f(img / 1e6 / median(s('seconds')), 0)} | ${cell(s('cpuSeconds'))} | ${f(median(s('sysSeconds')))} | ${cell(rss, 0)} | ${cell(faults, 0)} | ${store} | ${pct(Math.max(...s('others')))} |`,
      );
    }
    const ratio = (key) => f(med(r, 'encrypted', step, key) / med(r, 'plain', step, key), 3);
    rows.push(
      `| | **encrypted / plain** | **${ratio('seconds')}** | | **${ratio('cpuSeconds')}** | ${ratio('sysSeconds')} | ${ratio('rssKiB')} | ${ratio('minorFaults')} | | |`,
    );
  }
  return rows;
}

function profileSection(p) {
  if (!p) return [];
  const out = [
    '',
    '### Where the CPU goes (one more round under `node --cpu-prof`; the profiler slows what it watches)',
    '',
    'Self time summed over the main thread and the worker threads, in CPU ms (native work, such as AES-GCM, SHA-256 or zstd, counts as the JS function that called it).',
  ];
  for (const step of STEPS) {
    out.push('', `**${LABEL[step]}**`, '', '| | plain | encrypted |', '|---|---|---|');
    const [a, b] = VARIANTS.map((n) => p[n][step]);
    out.push(`| wall s / CPU s under the profiler | ${f(a.seconds)} / ${f(a.cpuSeconds)} | ${f(b.seconds)} / ${f(b.cpuSeconds)} |`);
    out.push(`| sampled CPU ms (threads) | ${f(a.profile.totalMs, 0)} (${a.profile.threads}) | ${f(b.profile.totalMs, 0)} (${b.profile.threads}) |`);
    for (let i = 0; i < 8; i++) {
      const c = (x) => (x.profile.top[i] ? `${x.profile.top[i].name.replace(/\|/g, '\\|')}: ${f(x.profile.top[i].ms, 0)}` : '');
      out.push(`| top ${i + 1} | ${c(a)} | ${c(b)} |`);
    }
  }
  return out;
}

function render(r) {
  const c = r.image.counts;
  return [
    `## Issue 13: what encryption at rest costs${r.noNative ? ', without the native addon (COLDVAULT_NATIVE=off)' : ''}`,
    '',
    `\`${r.command}\`, started ${r.startedAt}, ${r.rounds} round${r.rounds > 1 ? 's' : ''}, ${f(r.totalSeconds / 60, 1)} min${r.quick ? ' (**--quick: the figures say nothing about the targets**)' : ''}.`,
    `Image: ${size(r.image.size)} of ${r.image.regions} regions of 4 MiB (zero ${c.zero}, of them ${c.holes} holes; random ${c.random}; text ${c.text}), the nightly copy with ${r.image.changed} regions rewritten (lib/images.mjs, as bench/run.mjs and bench/cluster.mjs).`,
    'Plain (`coldvault backup 101 --store S --snapshot off`) and encrypted (the same with `--encrypt KEYFILE`; restore with `--keyfile KEYFILE`), the key made with `coldvault key create KEYFILE --kdf none`:',
    'no passphrase, so no KDF runs in any timing (the KDF costs about 0.4 s per unlock with a passphrase: block `kdf`).',
    `Encrypted chunks sealed and opened with ${r.seal ?? 'n/a'}.`,
    'Each round: fresh datastores; full backup, nightly backup into the same store, restore of the full version (SHA-256 of every restored disk checked against the image);',
    'each step for both variants back to back before the next step, the order swapped every round (plain first in odd rounds, encrypted first in even ones); the image read into the page cache before every backup, `sync` before every step.',
    ...(r.rounds % 2 === 1 && r.rounds > 1
      ? ['**An odd number of rounds: plain went first once more than encrypted** (an even number gives each variant the first place equally often).']
      : []),
    "Wall time of the whole command (process start to exit, fsyncs included), CPU = user + sys of the process and its threads, peak RSS and minor page faults from GNU `time` (`%M`, `%R`); MB/s = the image's logical size / wall time.",
    '',
    '| target | measured (medians) | |',
    '|---|---|---|',
    ...targets(r).map(([what, got, ok]) => `| ${what} | ${got} | ${met(ok)} |`),
    '',
    '| step | variant | wall s, median [min–max] | MB/s | CPU s | of it sys | peak RSS MiB | minor page faults, thousands | store after | others used, at most |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...stepRows(r),
    '',
    `Every restore identical to the image: ${r.roundsData.every((x) => VARIANTS.every((n) => x[n].restore.sha256ok)) ? 'yes' : 'NO'}. "Others used": the share of the machine's CPUs that other processes took during the step (the machine is shared).`,
    ...profileSection(r.profile),
    '',
    `Machine: ${Object.entries(r.machine)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ')}.`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}

async function main() {
  rmSync(dir, { recursive: true, force: true });
  preflight();
  const r = {
    quick,
    rounds,
    startedAt: new Date(started).toISOString(),
    machine: machineInfo(dir),
    roundsData: [],
    seal: sealPath(),
    noNative: opt['no-native'],
  };
  r.machine.coldvault = `${sh('git', ['-C', REPO, 'describe', '--always', '--dirty'])}, node ${process.version}`;
  log(`making the ${(regions * REGION) / MiB} MiB image and its nightly copy`);
  const images = await makeImages();
  r.image = { size: images.plan.size, counts: images.plan.counts, changed: images.plan.changed.length, regions };
  const keyFile = join(dir, 'bench.key');
  sh(process.execPath, [CLI, 'key', 'create', keyFile, '--kdf', 'none']);
  const site = makeSite(join(dir, 'site'));
  const variants = variantsOf(site, keyFile);
  for (let i = 1; i <= rounds; i++) {
    const order = i % 2 === 1 ? VARIANTS : [...VARIANTS].reverse();
    log(`round ${i}/${rounds}, ${order[0]} first (load average ${loadAverage()})`);
    r.roundsData.push({ round: i, load: loadAverage(), ...(await round(order, variants, site, images)) });
  }
  r.machine['load after'] = `load average ${loadAverage()}`;
  if (opt.profile) {
    log('profiled round: every step under node --cpu-prof');
    r.profile = await profileRound(variants, site, images);
  }
  r.totalSeconds = (Date.now() - started) / 1000;
  r.command = `node bench/encryption.mjs ${process.argv.slice(2).join(' ')}`.trim();
  if (opt.json) writeFileSync(opt.json, `${JSON.stringify(r, null, 2)}\n`);
  const text = render(r);
  replaceBlock(resolve(opt.out), BLOCK, text);
  process.stdout.write(`${text}\n`);
  log(`wrote ${opt.out} (total ${(r.totalSeconds / 60).toFixed(1)} min)`);
}

if (opt['from-json']) {
  const r = JSON.parse(readFileSync(opt['from-json'], 'utf8'));
  replaceBlock(resolve(opt.out), r.noNative ? 'encryption-no-native' : 'encryption', render(r));
  process.exit(0);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`\nencryption bench FAILED: ${err?.stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
