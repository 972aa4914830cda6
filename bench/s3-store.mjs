#!/usr/bin/env node
/**
 * A datastore in a bucket (issue 14), as root: `node bench/s3-store.mjs [--quick] [--rounds N]`. One
 * real Ceph radosgw on 127.0.0.1 (scripts/radosgw.mjs: memstore, tcp_nodelay=1), the bench image of
 * lib/images.mjs (2 GiB; --quick 512 MiB) and its next night (2% of the regions rewritten). Per round,
 * into a fresh prefix: full backup (`--snapshot off`), the nightly, a restore of the full version
 * (SHA-256-checked), each a whole `coldvault` process under GNU time; and the peers the issue names,
 * measured in the same round against the same radosgw: a plain parallel uploader (coldvault's S3
 * client, 8 PUTs in flight, nothing else) sending as many bytes in 4 MiB objects as the backup stored,
 * and the same reading them back (8 GETs in flight). The nightly's upload is counted from the bucket
 * (the sizes of the objects it added), not estimated. Writes the block "s3-store" of bench/RESULTS.md.
 * --pin: the Ceph daemons on CPU 1, this process and every coldvault it starts on CPU 0 (taskset), as
 * when the service runs on machines of its own; writes the block "s3-store-pinned" instead.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { commonOptions, benchOptions } from './lib/bench-options.mjs';
import { makeBenchImages, sha256File, warmImage } from './lib/cluster-steps.mjs';
import { measure, sh } from './lib/exec.mjs';
import { REGION } from './lib/images.mjs';
import { loadAverage } from './lib/machine.mjs';
import { median } from './lib/report.mjs';
import { replaceBlock } from './lib/sections.mjs';
import { linkSource, makeSite, NEW_ID, VMID } from './lib/tools.mjs';
import { startRadosgw } from '../scripts/radosgw.mjs';

const REPO = resolve(import.meta.dirname, '..');
const CLI = join(REPO, 'bin', 'coldvault.js');
const started = Date.now();
const { values: opt } = parseArgs({ options: { ...commonOptions(REPO, '/var/tmp/coldvault-s3-bench'), pin: { type: 'boolean', default: false } } });
const { fail, log, rounds, regions, dir } = benchOptions('s3-store', opt, started, 2);
if (process.getuid?.() !== 0) fail('run it as root (ceph, and the scratch folder under /var/tmp)');
const tmp = join(dir, 'tmp');
mkdirSync(tmp, { recursive: true });
if (!opt['no-build']) sh('npm', ['run', 'build'], { cwd: REPO });
const { S3Client } = await import('../dist/targets/index.js');
const { blobPlainView } = await import('../dist/format/index.js');

const rgw = await startRadosgw(join(dir, 'rgw'));
if (opt.pin) pinCpus();
const s3env = { S3_ENDPOINT: rgw.endpoint, S3_REGION: rgw.region };
const env = { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey };
const bucket = 'bench';
const client = new S3Client({
  endpoint: s3env.S3_ENDPOINT,
  region: s3env.S3_REGION,
  bucket,
  credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
});

/** Ceph's daemons (all their threads) on CPU 1, this process on CPU 0: its children inherit it. */
function pinCpus() {
  for (const name of ['client.rgw', 'osd.0', 'mon.a']) {
    const pid = readFileSync(join(rgw.dir, `${name}.pid`), 'utf8').trim();
    sh('taskset', ['-apc', '1', pid]);
  }
  sh('taskset', ['-apc', '0', String(process.pid)]);
}

/** CPU seconds the Ceph daemons (radosgw, OSD, monitor) have used so far, from /proc. */
function cephCpu() {
  let ticks = 0;
  for (const name of ['client.rgw', 'osd.0', 'mon.a']) {
    try {
      const pid = readFileSync(join(rgw.dir, `${name}.pid`), 'utf8').trim();
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      /* gone */
    }
  }
  return ticks / 100;
}

/** `coldvault ARGS` measured (wall, CPU, peak RSS), with the Ceph daemons' CPU meanwhile. */
async function cv(args) {
  const ceph0 = cephCpu();
  const m = await measure(process.execPath, [CLI, ...args], { tmp, env });
  return { ...m, cephCpu: cephCpu() - ceph0 };
}
const storeFlags = (prefix) => ['--store', `s3://${bucket}/${prefix}`, '--endpoint', s3env.S3_ENDPOINT, '--state-dir', join(dir, 'state')];

async function objectBytes(prefix) {
  const sizes = new Map();
  for await (const o of client.list(prefix)) sizes.set(o.key, o.size);
  return sizes;
}

async function removeAll(prefix) {
  const keys = [...(await objectBytes(prefix)).keys()];
  for (let i = 0; i < keys.length; i += 16) await Promise.all(keys.slice(i, i + 16).map((k) => client.delete(k)));
}

/** The plain uploader and reader: `bytes` in 4 MiB random objects, 8 requests in flight. */
async function plainPeer(prefix, bytes) {
  const count = Math.max(1, Math.round(bytes / REGION));
  const blobs = Array.from({ length: 8 }, () => randomBytes(REGION));
  const into = Array.from({ length: 8 }, () => Buffer.allocUnsafe(REGION));
  const run = async (fn) => {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      blobs.map(async (_, slot) => {
        while (next < count) await fn(next++, slot);
      }),
    );
    return (performance.now() - t0) / 1000;
  };
  const c0 = cephCpu();
  const put = await run((i, slot) => client.put(`${prefix}${i}`, blobs[slot]));
  const c1 = cephCpu();
  const own = process.cpuUsage();
  const get = await run((i, slot) => client.get(`${prefix}${i}`, { into: into[slot] }));
  const getClient = cpuSince(own);
  return { count, bytes: count * REGION, put, get, putCeph: c1 - c0, getCeph: cephCpu() - c1, getClient };
}

const cpuSince = (from) => {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
};

/**
 * The verification floor of a restore: the CPU seconds one thread needs to check every chunk blob of
 * the version as any verifying restore must (CRC, zstd decode, SHA-256 against the name), the blobs
 * already in memory (fetched first, not timed), nothing written. A plain reader does none of it.
 */
async function verifyFloor(keys) {
  const blobs = [];
  for (const key of keys) blobs.push([key.slice(key.lastIndexOf('/') + 1), await client.get(key)]);
  const scratch = Buffer.allocUnsafe(REGION);
  const from = process.cpuUsage();
  for (const [hex, blob] of blobs) {
    const plain = blobPlainView(blob, `chunk ${hex}`, scratch);
    if (createHash('sha256').update(plain).digest('hex') !== hex) fail(`chunk ${hex} does not hash to its name`);
  }
  return cpuSince(from);
}

const rows = [];
try {
  await client.createBucket(s3env.S3_REGION, false);
  const images = await makeBenchImages(dir, regions);
  const imageBytes = regions * REGION;
  for (let round = 1; round <= rounds; round++) {
    const prefix = `r${round}/`;
    const site = makeSite(join(dir, `site-${round}`));
    const siteFlags = ['--guests-dir', site.guests, '--storage', `local=${site.vz}`];
    await cv(['datastore', 'init', `s3://${bucket}/r${round}`, '--endpoint', s3env.S3_ENDPOINT]);
    linkSource(site, images.full);
    await warmImage(images.full, images.plan);
    log(`round ${round}: full backup`);
    const full = await cv(['backup', VMID, ...storeFlags(prefix), ...siteFlags, '--snapshot', 'off']);
    const afterFull = await objectBytes(prefix);
    const stored = [...afterFull.values()].reduce((s, n) => s + n, 0);
    linkSource(site, images.nightly);
    await warmImage(images.nightly, images.plan);
    log(`round ${round}: nightly`);
    const nightly = await cv(['backup', VMID, ...storeFlags(prefix), ...siteFlags, '--snapshot', 'off']);
    const afterNightly = await objectBytes(prefix);
    const uploaded = [...afterNightly].filter(([k, n]) => afterFull.get(k) !== n && !k.includes('/locks/')).reduce((s, [, n]) => s + n, 0);
    log(`round ${round}: restore`);
    const restore = await cv(['restore', VMID, '--version', '1', '--new-id', NEW_ID, ...storeFlags(prefix), ...siteFlags]);
    const restored = join(site.vz, 'images', NEW_ID, `vm-${NEW_ID}-disk-0.raw`);
    if ((await sha256File(restored)) !== images.fullSha) fail(`round ${round}: the restored disk differs from the image`);
    log(`round ${round}: plain uploader and reader, ${(stored / 2 ** 20).toFixed(0)} MiB`);
    const peer = await plainPeer(`plain-${round}/`, stored);
    const floor = await verifyFloor([...afterFull.keys()].filter((k) => k.startsWith(`${prefix}chunks/`)));
    log(`round ${round}: the same backup and restore into a folder (reference)`);
    const folder = join(dir, `folder-${round}`);
    await cv(['datastore', 'init', folder]);
    linkSource(site, images.full);
    await warmImage(images.full, images.plan);
    const localFull = await cv(['backup', VMID, '--store', folder, ...siteFlags, '--snapshot', 'off']);
    rmSync(join(site.vz, 'images', NEW_ID), { recursive: true, force: true });
    rmSync(join(site.guests, `${NEW_ID}.conf`), { force: true });
    const localRestore = await cv(['restore', VMID, '--version', '1', '--new-id', NEW_ID, '--store', folder, ...siteFlags]);
    rmSync(folder, { recursive: true, force: true });
    rows.push({ round, full, nightly, restore, stored, uploaded, peer, floor, imageBytes, localFull, localRestore });
    rmSync(site.root, { recursive: true, force: true });
    await removeAll(prefix);
    await removeAll(`plain-${round}/`);
  }
} finally {
  client.close();
  rgw.stop();
  rmSync(dir, { recursive: true, force: true });
}

const mbps = (bytes, s) => bytes / 1e6 / s;
const backupShare = rows.map((r) => mbps(r.stored, r.full.seconds) / mbps(r.peer.bytes, r.peer.put));
const restoreShare = rows.map((r) => mbps(r.stored, r.restore.seconds) / mbps(r.peer.bytes, r.peer.get));
/**
 * The best restore share this machine allows: a verifying restore needs at least the verification
 * floor plus what the plain reader's own requests cost (the same client, the same bytes), and Ceph its
 * share of the plain read. Pinned, coldvault has one core; else that CPU and Ceph's share 2 cores.
 */
const restoreBound = (r) => (opt.pin ? Math.max(r.floor + r.peer.getClient, r.peer.getCeph) : (r.floor + r.peer.getClient + r.peer.getCeph) / 2);
const restoreCeiling = rows.map((r) => r.peer.get / restoreBound(r) / (r.peer.bytes / r.stored));
/**
 * The same for the backup: it needs at least what the same backup into a folder costs (read, hash,
 * compress, write: CPU s of its own), and Ceph its share of the plain upload.
 */
const backupBound = (r) => (opt.pin ? Math.max(r.localFull.cpuSeconds, r.peer.putCeph) : (r.localFull.cpuSeconds + r.peer.putCeph) / 2);
const backupCeiling = rows.map((r) => r.peer.put / backupBound(r) / (r.peer.bytes / r.stored));
const ceilingVerdict = (c) => (median(c) < 0.8 ? 'the target cannot be met on this machine' : 'reachable');
const nightlyShare = rows.map((r) => r.uploaded / r.imageBytes);
const rss = Math.max(...rows.flatMap((r) => [r.full.rssKiB, r.nightly.rssKiB, r.restore.rssKiB])) / 1024;
const pct = (x) => `${(x * 100).toFixed(1)}%`;
const verdict = (ok) => (ok ? 'met' : 'MISSED');
const text = [
  `## Issue 14: a datastore on radosgw (bench/s3-store.mjs${opt.pin ? ' --pin' : ''})`,
  '',
  `\`node bench/s3-store.mjs${opt.quick ? ' --quick' : ''}${opt.pin ? ' --pin' : ''} --rounds ${rounds}\`, ${new Date(started).toISOString()}, load average before ${loadAverage()}. One Ceph radosgw (memstore, beast with tcp_nodelay=1) on 127.0.0.1, plain HTTP, ${opt.pin ? 'its daemons pinned to CPU 1, coldvault and the plain peers to CPU 0 (taskset: each side a core of its own)' : 'on the same 2 cores as coldvault'}; image ${(rows[0]?.imageBytes ?? 0) / 2 ** 30} GiB (55% zero, 20% random, 25% text), nightly = 2% of the regions rewritten; medians of ${rounds} round(s) [each round].`,
  '',
  '| target | figure | |',
  '|---|---|---|',
  `| backup >= 80% of a plain uploader's PUT rate (object bytes per second) | ${pct(median(backupShare))} [${backupShare.map(pct).join(', ')}] | ${verdict(median(backupShare) >= 0.8)} |`,
  `| the backup's ceiling here: a plain uploader's time / the least this backup needs (its own CPU into a folder${opt.pin ? " on one core, or Ceph's share of the upload on its core" : ", and Ceph's share of the upload, over 2 cores"}) | ${pct(median(backupCeiling))} [${backupCeiling.map(pct).join(', ')}] | ${ceilingVerdict(backupCeiling)} |`,
  `| restore >= 80% of a plain reader's GET rate | ${pct(median(restoreShare))} [${restoreShare.map(pct).join(', ')}] | ${verdict(median(restoreShare) >= 0.8)} |`,
  `| the restore's ceiling here: a plain reader's time / the least a verifying restore needs (verification floor + the reader's own CPU${opt.pin ? " on one core, or Ceph's share on its core" : ", and Ceph's share, over 2 cores"}) | ${pct(median(restoreCeiling))} [${restoreCeiling.map(pct).join(', ')}] | ${ceilingVerdict(restoreCeiling)} |`,
  `| nightly uploads <= 3% of the image's bytes (counted in the bucket) | ${pct(median(nightlyShare))} [${nightlyShare.map(pct).join(', ')}] | ${verdict(median(nightlyShare) <= 0.03)} |`,
  `| peak RSS <= 200 MiB (backup, nightly, restore) | ${rss.toFixed(0)} MiB | ${verdict(rss <= 200)} |`,
  '',
  "CPU s: coldvault's own / the Ceph daemons' (radosgw, OSD, monitor) meanwhile. Verify floor: CPU s of one thread checking every chunk blob of the restored version (CRC, zstd decode, SHA-256), blobs in memory, nothing written. Plain GET client: this process's CPU s for the plain reader's requests.",
  '',
  '| round | full backup s (CPU s) | into a folder s (CPU s) | stored MiB | plain PUT s (Ceph CPU s) | restore s (CPU s) | from a folder s | plain GET s (Ceph CPU s) | plain GET client CPU s | verify floor CPU s | nightly s | nightly uploaded MiB |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.round} | ${r.full.seconds.toFixed(2)} (${r.full.cpuSeconds.toFixed(2)} / ${r.full.cephCpu.toFixed(2)}) | ${r.localFull.seconds.toFixed(2)} (${r.localFull.cpuSeconds.toFixed(2)}) | ${(r.stored / 2 ** 20).toFixed(0)} | ${r.peer.put.toFixed(2)} (${r.peer.putCeph.toFixed(2)}) | ${r.restore.seconds.toFixed(2)} (${r.restore.cpuSeconds.toFixed(2)} / ${r.restore.cephCpu.toFixed(2)}) | ${r.localRestore.seconds.toFixed(2)} | ${r.peer.get.toFixed(2)} (${r.peer.getCeph.toFixed(2)}) | ${r.peer.getClient.toFixed(2)} | ${r.floor.toFixed(2)} | ${r.nightly.seconds.toFixed(2)} | ${(r.uploaded / 2 ** 20).toFixed(1)} |`,
  ),
  '',
];
replaceBlock(resolve(opt.out), opt.pin ? 's3-store-pinned' : 's3-store', text.join('\n'));
console.log(text.join('\n'));
