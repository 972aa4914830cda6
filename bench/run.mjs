#!/usr/bin/env node
/**
 * coldvault bench: `npm run bench` (see bench/README.md).
 * Makes deterministic images, runs coldvault and its peers (restic, borg, zstd, cp, openssl) side by
 * side for several rounds, then coldvault onto emulated USB disks, checks every restore's SHA-256
 * against its source, and writes bench/RESULTS.md.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { dropCaches, measure, sh } from './lib/exec.mjs';
import { planImage, planSparse, writeImage, REGION } from './lib/images.mjs';
import { Borg, Coldvault, Restic, linkSource, makeSite } from './lib/tools.mjs';
import { blkioBytes, cleanupUsb, setupUsb, usbSupport } from './lib/usb.mjs';
import { renderResults } from './lib/report.mjs';
import { namedBlocks } from './lib/sections.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ALL = ['coldvault', 'restic', 'borg', 'zstd', 'cp', 'openssl', 'sparse', 'usb'];
const started = process.hrtime.bigint();

const { values: opt } = parseArgs({
  options: {
    dir: { type: 'string', default: '/var/tmp/coldvault-bench' },
    out: { type: 'string', default: join(REPO, 'bench', 'RESULTS.md') },
    json: { type: 'string' },
    rounds: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    usb: { type: 'boolean', default: false },
    'skip-usb': { type: 'boolean', default: false },
    only: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    'no-install': { type: 'boolean', default: false },
    clean: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (opt.help) {
  console.log(`usage: node bench/run.mjs [--rounds N] [--smoke] [--usb] [--skip-usb] [--only ${ALL.join(',')}]
        [--dir DIR] [--out RESULTS.md] [--json FILE] [--no-build] [--no-install] [--clean]
  --smoke       64 MiB image, 1 round, no 32 GiB image, no USB unless --usb
  --dir         work dir (default /var/tmp/coldvault-bench; images are kept there for the next run)
  --clean       remove the work dir at the end (images too)
The benches of single issues run apart, each writing its own block of RESULTS.md (kept by this one):
  node bench/cold-snapshots.mjs   issue 11: cold snapshots, changed-extent nightlies, downtime
  node bench/cluster.mjs          issue 12: push and remote restore between two nodes
  node bench/kdf.mjs              issue 13: the key file's KDF, scrypt against argon2id
  node bench/encryption.mjs       issue 13: encrypted against plain backup, nightly, restore, peak RSS`);
  process.exit(0);
}

const smoke = opt.smoke;
const rounds = Number(opt.rounds ?? (smoke ? 1 : 3));
if (!Number.isInteger(rounds) || rounds < 1) fail(`--rounds ${opt.rounds}: expected a positive integer`);
const only = new Set(opt.only ? opt.only.split(',').map((s) => s.trim()) : ALL);
for (const name of only) if (!ALL.includes(name)) fail(`--only: unknown '${name}' (expected ${ALL.join(', ')})`);
if (smoke) only.delete('sparse');
if ((smoke && !opt.usb) || opt['skip-usb']) only.delete('usb');

const dir = resolve(opt.dir);
const tmp = join(dir, 'tmp');
const work = join(dir, 'run');
const cleanups = [];
let cpu0;

function log(msg) {
  const s = Number(process.hrtime.bigint() - started) / 1e9;
  process.stderr.write(`[bench ${s.toFixed(1).padStart(6)}s] ${msg}\n`);
}

function fail(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        c();
      } catch {
        /* best effort */
      }
    }
    process.exit(130);
  });
}

// ---------------------------------------------------------------------------------------------
// Setup: tools, build, images

function have(cmd) {
  return sh('/bin/sh', ['-c', `command -v ${cmd}`], { allowFail: true }) !== '';
}

function ensurePackages() {
  const need = [];
  if (only.has('restic') && !have('restic')) need.push('restic');
  if (only.has('borg') && !have('borg')) need.push('borgbackup');
  if (only.has('zstd') && !have('zstd')) need.push('zstd');
  if (only.has('openssl') && !have('openssl')) need.push('openssl');
  if (!existsSync('/usr/bin/time')) need.push('time');
  if (need.length === 0) return;
  if (opt['no-install'] || process.getuid?.() !== 0) fail(`missing: ${need.join(' ')} (install them: apt-get install -y ${need.join(' ')})`);
  log(`installing ${need.join(' ')} from Debian's packages`);
  sh('apt-get', ['update', '-qq'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  sh('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...need], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

function build() {
  if (!opt['no-build']) {
    log('building coldvault (npm run build: tsc, UI files, bundle)');
    sh('npm', ['run', 'build'], { cwd: REPO });
  }
  if (!existsSync(join(REPO, 'dist', 'cli', 'main.js'))) fail('dist/ is missing: run npm run build');
  const addon = join(REPO, 'build', 'Release', 'coldvault_native.node');
  if (!existsSync(addon) && !opt['no-build']) {
    log('building the SEEK_DATA addon (npm run build:native)');
    sh('npm', ['run', 'build:native'], { cwd: REPO, allowFail: true });
  }
  return existsSync(addon);
}

function versions() {
  const first = (cmd, args) => sh(cmd, args, { allowFail: true }).split('\n')[0];
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  const commit = sh('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, allowFail: true });
  const dirty = sh('git', ['status', '--porcelain', '--', 'src'], { cwd: REPO, allowFail: true }) !== '';
  const v = { coldvault: `${pkg.version} (${commit}${dirty ? ', src/ has uncommitted changes' : ''})`, node: process.version };
  if (have('restic')) v.restic = first('restic', ['version']);
  if (have('borg')) v.borg = first('borg', ['--version']);
  if (have('zstd')) v.zstd = first('zstd', ['--version']);
  if (have('openssl')) v.openssl = first('openssl', ['version']);
  v.cp = first('cp', ['--version']);
  return v;
}

/** Share of the CPUs busy over `ms` before the bench starts (others' work on a shared machine). */
function busyShare(ms = 1000) {
  const sample = () => readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const a = sample();
  sh('sleep', [String(ms / 1000)]);
  const b = sample();
  const d = b.map((x, i) => x - a[i]);
  const total = d.reduce((s, x) => s + x, 0);
  return total > 0 ? 1 - (d[3] + d[4]) / total : 0;
}

/** CPU seconds: the whole machine busy, and this process with its waited-for children. */
function cpuAccount() {
  const hz = 100; // USER_HZ on Linux
  const all = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const busy = all.reduce((s, x) => s + x, 0) - all[3] - all[4];
  const self = readFileSync('/proc/self/stat', 'utf8');
  const fields = self
    .slice(self.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const ours = fields[11] + fields[12] + fields[13] + fields[14]; // utime stime cutime cstime
  return { busy: busy / hz, ours: ours / hz };
}

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown';
  let os = 'unknown';
  try {
    os = /PRETTY_NAME="(.*)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    /* none */
  }
  return {
    cpu: `${model}, ${cpus().length} cores`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os,
    kernel: sh('uname', ['-r']),
    'load before': `load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} and CPUs ${(100 * busyShare()).toFixed(0)}% busy just before the run`,
    'work dir': `${dir} (${sh('df', ['--output=fstype', dir]).split('\n').pop().trim()})`,
  };
}

async function sha256File(path) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk);
  return hash.digest('hex');
}

function warmRegions(path, regions) {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(REGION);
  try {
    for (const r of regions) if (!r.hole) readSync(fd, buf, 0, REGION, r.index * REGION);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads an image's data regions into the page cache before a measured step, so that every tool
 * starts from the same warm cache: borg drops what it read from the cache (posix_fadvise DONTNEED on
 * its input files), which left the next round's tools reading most of the image from disk.
 */
function warmImage(images, which) {
  warmRegions(images[which].path, images.plan.regions);
}

function duBytes(path) {
  return Number(sh('du', ['-sb', path]).split(/\s/)[0]);
}

function allocatedBytes(path) {
  return Number(sh('du', ['-sB1', path]).split(/\s/)[0]);
}

// ---------------------------------------------------------------------------------------------
// Measurements

const results = {
  smoke,
  rounds,
  startedAt: new Date().toISOString(),
  steps: {},
  stores: {},
  restores: [],
  usb: [],
  sparse: null,
  notes: [],
};

function record(key, m, extra = {}) {
  (results.steps[key] ??= []).push({ seconds: m.seconds, rssKiB: m.rssKiB, cpuSeconds: m.cpuSeconds, sysSeconds: m.sysSeconds, ...extra });
  log(`${key}: ${m.seconds.toFixed(2)} s, CPU ${m.cpuSeconds.toFixed(2)} s (sys ${m.sysSeconds.toFixed(2)}), peak RSS ${(m.rssKiB / 1024).toFixed(0)} MiB`);
}

async function checkRestore(tool, round, label, file, expected) {
  const got = await sha256File(file);
  const ok = got === expected.sha256;
  results.restores.push({ tool, round, label, sha256: got, expected: expected.sha256, identical: ok });
  if (!ok) {
    throw new Error(
      `RESTORE MISMATCH: ${tool} round ${round} (${label}) restored ${file} with SHA-256 ${got}, the source image ${expected.path} has ${expected.sha256}`,
    );
  }
  log(`${tool} restore (${label}) identical to the source: ${got.slice(0, 16)}...`);
}

async function benchBackupTool(tool, site, images, round) {
  const name = tool.name;
  const repo = join(work, `${name}-store`);
  await tool.init(repo);
  linkSource(site, images.full.path);
  warmImage(images, 'full');
  sh('sync');
  const full = await tool.backup();
  record(`${name} full`, full);
  const afterFull = duBytes(repo);
  linkSource(site, images.nightly.path);
  warmImage(images, 'nightly');
  sh('sync');
  const nightly = await tool.backup();
  record(`${name} nightly`, nightly);
  const afterNightly = duBytes(repo);
  (results.stores[name] ??= []).push({ afterFull, afterNightly });
  sh('sync');
  const target = join(work, `${name}-restore`);
  const restore = name === 'coldvault' ? await tool.restore(tool.versions) : await tool.restore(target);
  record(`${name} restore`, restore);
  await checkRestore(name, round, 'nightly version, warm cache', restore.file, images.nightly);
  if (name === 'coldvault') tool.clearRestore();
  else rmSync(target, { recursive: true, force: true });
  sh('sync');
  const verify = await tool.verify();
  record(`${name} verify`, verify, { storeBytes: afterNightly });
  if (name === 'coldvault') rmSync(repo, { recursive: true, force: true });
  else tool.cleanup();
}

async function benchSimple(images) {
  const src = images.full.path;
  const out = join(work, 'out');
  for (const level of [1, 3]) {
    if (!only.has('zstd')) break;
    warmImage(images, 'full');
    sh('sync');
    const m = await measure('zstd', [`-${level}`, '-T2', '-q', '-f', src, '-o', out], { tmp });
    record(`zstd -${level} -T2`, m, { outBytes: duBytes(out) });
    rmSync(out, { force: true });
  }
  if (only.has('cp')) {
    warmImage(images, 'full');
    sh('sync');
    const m = await measure('cp', [src, out], { tmp });
    record('cp', m);
    rmSync(out, { force: true });
  }
  if (only.has('openssl')) {
    warmImage(images, 'full');
    sh('sync');
    const m = await measure('openssl', ['dgst', '-sha256', src], { tmp });
    if (!m.stdout.includes(images.full.sha256)) throw new Error(`openssl dgst gave '${m.stdout.trim()}', expected ${images.full.sha256}`);
    record('openssl dgst -sha256', m);
  }
}

async function benchSparse(cli, site, image) {
  const cv = new Coldvault({ cli, site, tmp });
  const runs = [];
  for (let round = 1; round <= rounds; round++) {
    await cv.init(join(work, 'sparse-store'));
    linkSource(site, image.path);
    sh('sync');
    const m = await cv.backup();
    record('coldvault full (32 GiB sparse)', m);
    runs.push({ seconds: m.seconds, rssKiB: m.rssKiB, cpuSeconds: m.cpuSeconds, storeBytes: duBytes(cv.store) });
    rmSync(cv.store, { recursive: true, force: true });
  }
  results.sparse = { size: image.size, dataBytes: image.dataBytes, runs };
}

async function benchUsb(cli, site, images, name, bps) {
  const imageBytes = images.full.size;
  const usb = setupUsb({ dir, name, sizeBytes: Math.max(512 * 2 ** 20, Math.ceil((images.full.allocated * 2) / 2 ** 20) * 2 ** 20), bps });
  const cleanup = () => cleanupUsb(usb);
  cleanups.push(cleanup);
  try {
    log(`USB ${name}: ${usb.loop} (${usb.majmin}) ext4 at ${usb.mnt}, throttled to ${bps / 1e6} MB/s read and write`);
    const cv = new Coldvault({ cli, site, tmp });
    await cv.init(join(usb.mnt, 'store'));
    const storeEmpty = duBytes(cv.store);
    const entry = { name, bps, steps: {} };
    results.usb.push(entry);
    const step = async (key, fn, payloadOf) => {
      const b0 = blkioBytes(usb);
      const m = await fn();
      const b1 = blkioBytes(usb);
      const payload = payloadOf();
      entry.steps[key] = {
        seconds: m.seconds,
        rssKiB: m.rssKiB,
        cpuSeconds: m.cpuSeconds,
        payload,
        deviceRead: b1.read - b0.read,
        deviceWrite: b1.write - b0.write,
        imageRate: imageBytes / m.seconds,
        payloadRate: payload / m.seconds,
      };
      log(
        `USB ${name} ${key}: ${m.seconds.toFixed(2)} s, payload ${(payload / 1e6).toFixed(1)} MB = ${(payload / m.seconds / 1e6).toFixed(1)} MB/s` +
          ` (device: read ${((b1.read - b0.read) / 1e6).toFixed(1)} MB, written ${((b1.write - b0.write) / 1e6).toFixed(1)} MB), image ${(imageBytes / m.seconds / 1e6).toFixed(0)} MB/s`,
      );
      return m;
    };
    // full backup onto the device (source image warm in the page cache, on the local disk)
    linkSource(site, images.full.path);
    await sha256File(images.full.path);
    sh('sync');
    await step(
      'full',
      () => cv.backup({ cgroup: usb.cgroup }),
      () => duBytes(cv.store) - storeEmpty,
    );
    const chunkBytes = duBytes(join(cv.store, 'chunks'));
    // restore of the full version from the device, cold: the device's page cache is dropped first
    dropCaches();
    const r = await step(
      'restore',
      () => cv.restore(1, { cgroup: usb.cgroup }),
      () => chunkBytes,
    );
    await checkRestore('coldvault', 1, `USB ${name}, full version, read from the device`, r.file, images.full);
    cv.clearRestore();
    // nightly backup onto the device, its page cache dropped (the next night), the source warm again
    dropCaches();
    linkSource(site, images.nightly.path);
    await sha256File(images.nightly.path);
    sh('sync');
    const before = duBytes(cv.store);
    await step(
      'nightly',
      () => cv.backup({ cgroup: usb.cgroup }),
      () => duBytes(cv.store) - before,
    );
  } finally {
    cleanup();
    cleanups.splice(cleanups.indexOf(cleanup), 1);
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  cpu0 = cpuAccount();
  ensurePackages();
  const addon = build();
  mkdirSync(tmp, { recursive: true });
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  results.machine = machine();
  results.versions = versions();
  results.holeDetection = addon;
  if (!addon) results.notes.push('The SEEK_DATA addon is not built: coldvault reads holes (slower).');

  // images
  const imagesDir = join(dir, 'images');
  mkdirSync(imagesDir, { recursive: true });
  const regions = smoke ? 16 : 512;
  const plan = planImage({ regions, shares: { zero: 0.55, random: 0.2 }, seed: 20261127 });
  const key = JSON.stringify({ regions, seed: 20261127 });
  const fullPath = join(imagesDir, `main-${regions}-full.raw`);
  const nightlyPath = join(imagesDir, `main-${regions}-nightly.raw`);
  log(
    `images: ${plan.size / 2 ** 20} MiB, ${regions} regions of 4 MiB (zero ${plan.counts.zero}, of them ${plan.counts.holes} holes; random ${plan.counts.random}; text ${plan.counts.text}); nightly copy rewrites ${plan.changed.length}`,
  );
  if (writeImage(fullPath, plan, 'full', key)) log(`made ${fullPath}`);
  if (writeImage(nightlyPath, plan, 'nightly', key, fullPath)) log(`made ${nightlyPath}`);
  const images = {
    plan,
    full: { path: fullPath, size: plan.size, allocated: allocatedBytes(fullPath), sha256: await sha256File(fullPath) },
    nightly: { path: nightlyPath, size: plan.size, allocated: allocatedBytes(nightlyPath), sha256: await sha256File(nightlyPath) },
  };
  results.images = {
    size: plan.size,
    regions,
    counts: plan.counts,
    changed: plan.changed.length,
    allocated: images.full.allocated,
    sha256Full: images.full.sha256,
    sha256Nightly: images.nightly.sha256,
  };
  let sparseImage = null;
  if (only.has('sparse')) {
    const sp = planSparse({ regions: 8192, dataRegions: 25, seed: 32 });
    const path = join(imagesDir, 'sparse-32g.raw');
    if (writeImage(path, sp, 'full', JSON.stringify({ regions: 8192, data: 25, seed: 32 }))) log(`made ${path}`);
    sparseImage = { path, size: sp.size, dataBytes: 25 * REGION };
    warmRegions(path, sp.regions); // the page cache holds its data regions (the holes hold nothing)
  }

  const site = makeSite(join(work, 'site'));
  const cli = join(REPO, 'bin', 'coldvault.js');
  const tools = [];
  if (only.has('coldvault')) tools.push(new Coldvault({ cli, site, tmp }));
  if (only.has('restic')) tools.push(new Restic({ site, tmp, work }));
  if (only.has('borg')) tools.push(new Borg({ site, tmp, work }));

  for (let round = 1; round <= rounds; round++) {
    log(`round ${round} of ${rounds}`);
    for (const tool of tools) await benchBackupTool(tool, site, images, round);
    await benchSimple(images);
  }
  if (sparseImage) await benchSparse(cli, site, sparseImage);

  if (only.has('usb')) {
    const why = usbSupport();
    if (why) {
      results.notes.push(`Emulated USB disks skipped: ${why}.`);
      log(`USB skipped: ${why}`);
    } else {
      await benchUsb(cli, site, images, 'usb2', 40_000_000);
      await benchUsb(cli, site, images, 'usb3', 200_000_000);
    }
  }

  const cpu1 = cpuAccount();
  const others = cpu1.busy - cpu0.busy - (cpu1.ours - cpu0.ours);
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  results.machine['others during the run'] =
    `during the run, other processes and kernel threads (including the page cache's writeback and the loop device's workers) used ${others.toFixed(0)} CPU s = ${((100 * others) / (wall * cpus().length)).toFixed(0)}% of the machine`;
  results.machine['load after'] = `load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} at the end`;
  results.totalSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  results.command = `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim();
  const md = renderResults(results);
  mkdirSync(dirname(resolve(opt.out)), { recursive: true });
  const kept = namedBlocks(opt.out); // other benches' blocks (cold-snapshots, cluster, kdf, encryption) stay
  writeFileSync(opt.out, kept ? `${md.trimEnd()}\n\n${kept}` : md);
  if (opt.json) writeFileSync(opt.json, `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${opt.out} (total ${results.totalSeconds.toFixed(0)} s)`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`\nbench FAILED: ${err?.stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      c();
    } catch {
      /* best effort */
    }
  }
  if (opt.clean) rmSync(dir, { recursive: true, force: true });
}
