#!/usr/bin/env node
/**
 * Restore-on-the-fly (issue 15), as root: `node bench/live-restore.mjs [--quick] [--rounds N]`.
 * 1. Time to the boot line: the tiny real guest (lib: dist/cli/demo/tiny-guest.js) with a 4 GiB and a
 *    32 GiB disk (sparse ext4), each backed up once. Per round and size: its normal boot (QEMU from
 *    coldvault's own command builder, the raw disk with snapshot=on) and `restore --live` (from the
 *    command's start), each until its console prints `coldvault-tiny-guest: boot`; the live restore is
 *    then cancelled (SIGINT: the guest stopped, its files removed), or, when its copy was done first,
 *    the guest stopped and its files removed. Target: live <= normal + 5 s,
 *    whatever the disk size.
 * 2. Copy rate: the bench image of lib/images.mjs (2 GiB; --quick 512 MiB) as the disk of a guest that
 *    boots nothing (SeaBIOS finds no boot disk and waits, writing nothing); per round, interleaved and
 *    the order swapped every round: `coldvault restore` and `coldvault restore --live` (whole commands:
 *    the live one returns after the pivot), each result SHA-256-checked against the image. Target:
 *    live at least 70% of the plain restore's rate, over the copy phases (timed by the stderr lines that
 *    open and close them: a plain restore's first disk to its "restored N in", the live restore's
 *    "copying N to the final volumes" to its "copied N in", both after the volumes' fsync); the whole
 *    commands' ratio is shown beside it.
 * Both use accel tcg (this machine's nested KVM does not boot the guest). Writes the block "live-restore" of bench/RESULTS.md.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchOptions, commonOptions } from './lib/bench-options.mjs';
import { makeBenchImages, sha256File, warmImage } from './lib/cluster-steps.mjs';
import { measure, sh } from './lib/exec.mjs';
import { REGION } from './lib/images.mjs';
import { loadAverage } from './lib/machine.mjs';
import { median } from './lib/report.mjs';
import { replaceBlock } from './lib/sections.mjs';

const REPO = resolve(import.meta.dirname, '..');
const CLI = join(REPO, 'bin', 'coldvault.js');
const started = Date.now();
const { values: opt } = parseArgs({ options: commonOptions(REPO, '/var/tmp/coldvault-live-bench') });
const { fail, log, rounds, regions, dir } = benchOptions('live-restore', opt, started, 3);
if (process.getuid?.() !== 0) fail('run it as root (the scratch folder under /var/tmp)');
if (!opt['no-build']) sh('npm', ['run', 'build'], { cwd: REPO });
const { ensureTinyGuest, makeGuestDisk } = await import(join(REPO, 'dist/cli/demo/tiny-guest.js'));
const { parseGuestConfig, qemuCommand } = await import(join(REPO, 'dist/guests/index.js'));
const { QmpClient } = await import(join(REPO, 'dist/guests/hypervisor/index.js'));

const tmp = join(dir, 'tmp');
const run = join(dir, 'run');
const guests = join(dir, 'guests');
const vz = join(dir, 'vz');
const store = join(dir, 'store');
const consoleLog = join(dir, 'console.log');
const configFile = join(dir, 'coldvault.json');
const BOOT_LINE = 'coldvault-tiny-guest: boot';
const cv = (args) => measure(process.execPath, [CLI, ...args, '--config', configFile], { tmp, env: { TMPDIR: tmp } });

function setUp() {
  rmSync(dir, { recursive: true, force: true });
  for (const d of [tmp, run, guests, join(vz, 'images')]) mkdirSync(d, { recursive: true });
  const hypervisor = { driver: 'qemu', qmpSocket: join(run, '{vmid}.qmp'), accel: 'tcg' };
  writeFileSync(
    configFile,
    JSON.stringify({ node: 'bench', stateDir: join(dir, 'state'), guestsDir: guests, storages: { local: vz }, datastores: { main: store }, hypervisor }),
  );
}

function writeGuest(vmid, disk, extra = '') {
  mkdirSync(join(vz, 'images', vmid), { recursive: true });
  writeFileSync(join(guests, `${vmid}.conf`), `name: bench-${vmid}\nmemory: 256\ncores: 1\nvirtio0: local:${vmid}/${disk}\n${extra}`);
  return join(vz, 'images', vmid, disk);
}

/** Seconds from `t0` until the console log says the boot line (the file is emptied first by the caller). */
async function untilBootLine(t0, what, timeoutMs = 120_000) {
  for (;;) {
    if (existsSync(consoleLog) && readFileSync(consoleLog, 'utf8').includes(BOOT_LINE)) return Number(process.hrtime.bigint() - t0) / 1e9;
    if (Number(process.hrtime.bigint() - t0) / 1e6 > timeoutMs) throw new Error(`${what}: no boot line within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function quitQemu(socket) {
  const client = await QmpClient.connect(socket).catch(() => undefined);
  if (!client) return;
  await client.execute('quit').catch(() => undefined);
  await client.closed;
}

/** The guest's normal boot: coldvault's QEMU command for its config, the raw disk with snapshot=on. */
async function normalBoot(vmid, disk) {
  rmSync(consoleLog, { force: true });
  const config = parseGuestConfig(readFileSync(join(guests, `${vmid}.conf`), 'utf8'), 'bench guest');
  const socket = join(run, `boot-${vmid}.qmp`);
  const args = qemuCommand({
    vmid,
    config,
    drives: new Map([['virtio0', { file: disk, format: 'raw', snapshot: true }]]),
    qmpSocket: socket,
    network: 'none',
    accel: 'tcg',
    daemonize: { pidFile: join(run, `boot-${vmid}.pid`) },
  });
  const t0 = process.hrtime.bigint();
  sh('qemu-system-x86_64', args);
  const seconds = await untilBootLine(t0, `normal boot of ${vmid}`);
  await quitQemu(socket);
  return seconds;
}

/** `restore --live` until the boot line, then cancelled (SIGINT: the guest stopped, its files removed). */
async function liveBoot(vmid, newId) {
  rmSync(consoleLog, { force: true });
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [CLI, 'restore', vmid, '--version', '1', '--new-id', newId, '--live', '--store', 'main', '--config', configFile], {
    env: { ...process.env, TMPDIR: tmp },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (b) => (err += b));
  const exited = new Promise((r) => child.once('exit', r));
  const seconds = await untilBootLine(t0, `live restore of ${vmid}`).catch((e) => {
    throw new Error(`${e.message}\n${err}`);
  });
  if (child.exitCode === null) {
    child.kill('SIGINT');
    await exited;
    if (existsSync(join(guests, `${newId}.conf`)) || existsSync(join(run, `${newId}.qmp`))) fail(`the cancelled live restore of ${vmid} left files:\n${err}`);
  } else {
    // the copy (mostly holes) was done before the guest had booted: the guest runs on its final volume
    await quitQemu(join(run, `${newId}.qmp`));
    rmSync(join(guests, `${newId}.conf`), { force: true });
    rmSync(join(vz, 'images', newId), { recursive: true, force: true });
  }
  return seconds;
}

async function bootPart() {
  const guest = await ensureTinyGuest();
  const args = `args: -kernel ${guest.kernel} -initrd ${guest.initrd} -append 'console=ttyS0 panic=-1 quiet' -serial file:${consoleLog}\n`;
  const sizes = [
    { vmid: '104', gib: 4 },
    { vmid: '132', gib: 32 },
  ];
  for (const s of sizes) {
    s.disk = writeGuest(s.vmid, `vm-${s.vmid}-disk-0.raw`, args);
    await makeGuestDisk(s.disk, s.gib * 1024);
    await cv(['backup', s.vmid, '--store', 'main', '--snapshot', 'off']);
    s.normal = [];
    s.live = [];
  }
  for (let round = 1; round <= rounds; round++) {
    for (const s of sizes) {
      log(`boot round ${round}, ${s.gib} GiB`);
      s.normal.push(await normalBoot(s.vmid, s.disk));
      s.live.push(await liveBoot(s.vmid, String(Number(s.vmid) + 500)));
    }
  }
  return sizes;
}

async function copyPart() {
  const images = await makeBenchImages(join(dir, 'images'), regions);
  const source = writeGuest('101', 'vm-101-disk-0.raw');
  sh('ln', [images.full, source]);
  warmImage(images.full, images.plan);
  await cv(['backup', '101', '--store', 'main', '--snapshot', 'off']);
  const rows = [];
  for (let round = 1; round <= rounds; round++) {
    log(`copy round ${round}`);
    const row = { round };
    for (const step of round % 2 ? ['restore', 'live'] : ['live', 'restore']) {
      const extra = step === 'live' ? ['--live'] : [];
      const m = await cv(['restore', '101', '--version', '1', '--new-id', '201', '--store', 'main', ...extra]);
      if (step === 'live') await quitQemu(join(run, '201.qmp'));
      const out = join(vz, 'images', '201', 'vm-201-disk-0.raw');
      if ((await sha256File(out)) !== images.fullSha) fail(`the ${step} restore's disk differs from the image`);
      rmSync(join(vz, 'images', '201'), { recursive: true, force: true });
      rmSync(join(guests, '201.conf'), { force: true });
      row[step] = m;
    }
    rows.push(row);
  }
  return rows;
}

let sizes;
let rows;
try {
  setUp();
  await cv(['datastore', 'init', store]);
  sizes = await bootPart();
  rows = await copyPart();
} finally {
  sh('pkill', ['-9', '-f', run], { allowFail: true }); // a QEMU of a failed step
  rmSync(dir, { recursive: true, force: true });
}

const pct = (x) => `${(x * 100).toFixed(0)}%`;
const secs = (list) => list.map((x) => x.toFixed(1)).join(', ');
const share = rows.map((r) => r.restore.seconds / r.live.seconds);
/** Seconds between the first stderr line matching `from` and the first after it matching `to`. */
function phase(m, from, to) {
  const start = m.stderrLines.find((l) => from.test(l.line));
  const end = start && m.stderrLines.find((l) => l.at >= start.at && to.test(l.line));
  if (!start || !end) fail(`no phase ${from} .. ${to} in:\n${m.stderr}`);
  return end.at - start.at;
}
// the copy phases: a plain restore from its first disk to its "restored N in" (volumes written and fsynced); a live
// restore from "copying N to the final volumes" (the guest runs) to its "copied N in" (pivoted, volumes fsynced)
const copyShare = rows.map((r) => phase(r.restore, /restore disk '/, /restored .* in /) / phase(r.live, /copying .* to the final volumes/, /copied .* in /));
const extra = sizes.map((s) => median(s.live) - median(s.normal));
const text = [
  '## Issue 15: restore --live (bench/live-restore.mjs)',
  '',
  `\`node bench/live-restore.mjs${opt.quick ? ' --quick' : ''} --rounds ${rounds}\`, ${new Date(started).toISOString()}, load average before ${loadAverage()}; accel tcg; the tiny guest's disk sparse ext4; the copy image ${(regions * REGION) / 2 ** 30} GiB (55% zero, 20% random, 25% text), one version in a folder datastore, both restores SHA-256-checked, interleaved, the order swapped every round.`,
  '',
  '| target | figure | |',
  '|---|---|---|',
  ...sizes.map(
    (s, i) =>
      `| boot line after restore --live <= normal boot + 5 s, ${s.gib} GiB disk | +${extra[i].toFixed(1)} s (live ${median(s.live).toFixed(1)} s, normal ${median(s.normal).toFixed(1)} s) | ${extra[i] <= 5 ? 'met' : 'MISSED'} |`,
  ),
  `| restore --live copy >= 70% of a plain restore's rate (copy phases) | ${pct(median(copyShare))} [${copyShare.map(pct).join(', ')}] | ${median(copyShare) >= 0.7 ? 'met' : 'MISSED'} |`,
  `| (for comparison: whole commands, the live one with its export, overlays, QEMU's start and the pivot) | ${pct(median(share))} [${share.map(pct).join(', ')}] | |`,
  '',
  '| disk | normal boot s (per round) | restore --live to the boot line s |',
  '|---|---|---|',
  ...sizes.map((s) => `| ${s.gib} GiB | ${secs(s.normal)} | ${secs(s.live)} |`),
  '',
  '| round | restore s (CPU s, peak RSS MiB) | its copy phase s | restore --live s (CPU s, peak RSS MiB) | its copy phase s |',
  '|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.round} | ${r.restore.seconds.toFixed(2)} (${r.restore.cpuSeconds.toFixed(2)}, ${(r.restore.rssKiB / 1024).toFixed(0)}) | ${phase(r.restore, /restore disk '/, /restored .* in /).toFixed(2)} | ${r.live.seconds.toFixed(2)} (${r.live.cpuSeconds.toFixed(2)}, ${(r.live.rssKiB / 1024).toFixed(0)}) | ${phase(r.live, /copying .* to the final volumes/, /copied .* in /).toFixed(2)} |`,
  ),
  '',
];
replaceBlock(resolve(opt.out), 'live-restore', text.join('\n'));
console.log(text.join('\n'));
