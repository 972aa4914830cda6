#!/usr/bin/env node
/**
 * The NBD export against a restore (issue 15), as root: `node bench/export.mjs [--quick] [--rounds N]`.
 * The bench image of lib/images.mjs (2 GiB; --quick 512 MiB) backed up once (`--snapshot off`); per
 * round, interleaved and the order swapped every round: `coldvault restore` of the version (a whole
 * process under GNU time), and `nbdcopy` of the same disk from a running `coldvault export` (unix socket)
 * into a file (under GNU time; the export's own CPU read from /proc). Both outputs are SHA-256-checked
 * against the image. Target: nbdcopy at least 80% of the restore's rate (same bytes, so the ratio of the
 * times). Writes the block "export" of bench/RESULTS.md.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchOptions, commonOptions } from './lib/bench-options.mjs';
import { makeBenchImages, sha256File, warmImage } from './lib/cluster-steps.mjs';
import { measure, sh } from './lib/exec.mjs';
import { REGION } from './lib/images.mjs';
import { loadAverage } from './lib/machine.mjs';
import { median } from './lib/report.mjs';
import { replaceBlock } from './lib/sections.mjs';
import { linkSource, makeSite, NEW_ID, VMID } from './lib/tools.mjs';

const REPO = resolve(import.meta.dirname, '..');
const CLI = join(REPO, 'bin', 'coldvault.js');
const started = Date.now();
const { values: opt } = parseArgs({ options: commonOptions(REPO, '/var/tmp/coldvault-export-bench') });
const { fail, log, rounds, regions, dir } = benchOptions('export', opt, started, 4);
if (process.getuid?.() !== 0) fail('run it as root (the scratch folder under /var/tmp)');
if (sh('/bin/sh', ['-c', 'command -v nbdcopy'], { allowFail: true }) === '') fail('nbdcopy is missing (apt-get install libnbd-bin)');
const tmp = join(dir, 'tmp');
mkdirSync(tmp, { recursive: true });
if (!opt['no-build']) sh('npm', ['run', 'build'], { cwd: REPO });

const cv = (args) => measure(process.execPath, [CLI, ...args], { tmp });

/** CPU seconds a process has used so far (user + system), from /proc. */
function cpuOf(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** `coldvault export` on a socket, ready once it printed its URI. */
function startExport(storeFlags, socket) {
  const child = spawn(process.execPath, [CLI, 'export', VMID, '--version', '1', ...storeFlags.slice(0, 2), '--socket', socket], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((ok, bad) => {
    let out = '';
    child.stderr.on('data', (b) => {
      out += b;
    });
    child.stdout.on('data', (b) => {
      out += b;
      if (/nbd\+unix/.test(out)) ok(child);
    });
    child.on('exit', (code) => bad(new Error(`export exited ${code}: ${out}`)));
  });
}

async function restoreRound(site, storeFlags, wantSha) {
  rmSync(join(site.vz, 'images', NEW_ID), { recursive: true, force: true });
  rmSync(join(site.guests, `${NEW_ID}.conf`), { force: true });
  const m = await cv(['restore', VMID, '--version', '1', '--new-id', NEW_ID, ...storeFlags]);
  const out = join(site.vz, 'images', NEW_ID, `vm-${NEW_ID}-disk-0.raw`);
  if ((await sha256File(out)) !== wantSha) fail('the restored disk differs from the image');
  rmSync(join(site.vz, 'images', NEW_ID), { recursive: true, force: true });
  return m;
}

async function nbdcopyRound(storeFlags, wantSha) {
  const socket = join(tmp, 'export.sock');
  const child = await startExport(storeFlags, socket);
  const cpu0 = cpuOf(child.pid);
  const out = join(tmp, 'copy.raw');
  const m = await measure('nbdcopy', [`nbd+unix:///scsi0?socket=${socket}`, out], { tmp });
  const exportCpu = cpuOf(child.pid) - cpu0;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  if ((await sha256File(out)) !== wantSha) fail('the nbdcopy output differs from the image');
  rmSync(out, { force: true });
  return { ...m, exportCpu };
}

const rows = [];
try {
  const images = await makeBenchImages(dir, regions);
  const site = makeSite(join(dir, 'site'));
  const store = join(dir, 'store');
  const storeFlags = ['--store', store, '--guests-dir', site.guests, '--storage', `local=${site.vz}`];
  await cv(['datastore', 'init', store]);
  linkSource(site, images.full);
  warmImage(images.full, images.plan);
  await cv(['backup', VMID, ...storeFlags, '--snapshot', 'off']);
  for (let round = 1; round <= rounds; round++) {
    log(`round ${round}`);
    const order = round % 2 ? ['restore', 'nbdcopy'] : ['nbdcopy', 'restore'];
    const row = { round };
    for (const step of order) {
      row[step] = step === 'restore' ? await restoreRound(site, storeFlags, images.fullSha) : await nbdcopyRound(storeFlags, images.fullSha);
    }
    rows.push(row);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const share = rows.map((r) => r.restore.seconds / r.nbdcopy.seconds);
const pct = (x) => `${(x * 100).toFixed(0)}%`;
const text = [
  '## Issue 15: NBD export against a restore (bench/export.mjs)',
  '',
  `\`node bench/export.mjs${opt.quick ? ' --quick' : ''} --rounds ${rounds}\`, ${new Date(started).toISOString()}, load average before ${loadAverage()}; image ${(regions * REGION) / 2 ** 30} GiB (55% zero, 20% random, 25% text), one version in a folder datastore; the steps interleaved, the order swapped every round; both outputs SHA-256-checked.`,
  '',
  '| target | figure | |',
  '|---|---|---|',
  `| nbdcopy from the export >= 80% of coldvault restore's rate | ${pct(median(share))} [${share.map(pct).join(', ')}] | ${median(share) >= 0.8 ? 'met' : 'MISSED'} |`,
  '',
  '| round | restore s (CPU s, peak RSS MiB) | nbdcopy s (its CPU s) | export CPU s meanwhile |',
  '|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.round} | ${r.restore.seconds.toFixed(2)} (${r.restore.cpuSeconds.toFixed(2)}, ${(r.restore.rssKiB / 1024).toFixed(0)}) | ${r.nbdcopy.seconds.toFixed(2)} (${r.nbdcopy.cpuSeconds.toFixed(2)}) | ${r.nbdcopy.exportCpu.toFixed(2)} |`,
  ),
  '',
];
replaceBlock(resolve(opt.out), 'export', text.join('\n'));
console.log(text.join('\n'));
