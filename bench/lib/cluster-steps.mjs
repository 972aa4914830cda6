/**
 * The measured steps of bench/cluster.mjs on a two-node cluster (lib/cluster-netns.mjs): node1 holds
 * guest 101 (hypervisor none: not running) whose raw disk is a hard link to the bench image; its
 * cluster job `p` pushes to datastore `main` on node2 (the previous node of the ring node1, node2).
 * One round, with a fresh local datastore on node1 and a fresh `main` on node2:
 *   local full backup, push (job run), local nightly, nightly push (2% of the regions rewritten),
 *   local restore of the nightly version, remote restore of it from node2 (--remote), both restored
 *   disks hashed against the image.
 * The image's data regions are read into the page cache before every backup (warm, as bench/run.mjs);
 * chunks are written and read with O_DIRECT on both nodes (restores read the stores from the disk).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, linkSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { measure, sh } from './exec.mjs';
import { planImage, REGION, writeImage } from './images.mjs';
import { busySeconds, othersShare } from './machine.mjs';
import { summarizeProfiles } from './cpu-profile.mjs';

export const VMID = '101';
const DISK = 'vm-101-disk-0.raw';

export async function sha256File(path) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * REGION })) hash.update(chunk);
  return hash.digest('hex');
}

export function warmImage(path, plan) {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(REGION);
  try {
    for (const r of plan.regions) if (!r.hole) readSync(fd, buf, 0, REGION, r.index * REGION);
  } finally {
    closeSync(fd);
  }
}

/** Tokens, ring config, guest 101 on node1, job `p`, serve on node2. */
export async function setupRing(cluster) {
  const [a, b] = cluster.nodes;
  const token = b.run(['token', 'create', a.name, '--role', 'backup', '--store', 'main']).split('\n')[0];
  const nodes = [
    { name: a.name, url: a.url, fingerprint: a.fingerprint },
    { name: b.name, url: b.url, fingerprint: b.fingerprint, token },
  ];
  a.updateConfig({ cluster: { nodes } });
  b.updateConfig({ cluster: { nodes: nodes.map(({ token: _t, ...n }) => n) } });
  mkdirSync(join(a.storageDir, 'images', VMID), { recursive: true });
  writeFileSync(
    join(a.guestsDir, `${VMID}.conf`),
    [
      '# bench guest',
      'cores: 1',
      'memory: 512',
      'name: bench-101',
      'net0: virtio=A2:C0:43:77:08:A0,bridge=vmbr0',
      `scsi0: local:${VMID}/${DISK},size=2G`,
      '',
    ].join('\n'),
  );
  a.run(['job', 'add', 'p', '--mode', 'cluster', '--store', 'main', '--vmid', VMID]);
  await b.start();
}

/** The guest's disk becomes (a hard link to) `image`. */
export function useImage(node, image) {
  const disk = join(node.storageDir, 'images', VMID, DISK);
  rmSync(disk, { force: true });
  linkSync(image, disk);
}

let retired = 0;

/**
 * Empty datastores: node1's local one and node2's `main` (serve restarted around it). The old ones are
 * moved aside, not deleted, until the scratch folder goes at the end: deleting a store frees hundreds
 * of inodes, and for the next half minute ext4 skips them in every create and mkdir after reading
 * their inode blocks (`recently_deleted`: a tenth of node2's CPU in a push, by perf), which a
 * long-lived store never meets.
 */
export async function freshStores(cluster, localStore) {
  const [a, b] = cluster.nodes;
  const aside = (dir) => existsSync(dir) && renameSync(dir, `${dir}.retired-${process.pid}-${++retired}`);
  aside(localStore);
  a.run(['datastore', 'init', localStore]);
  await b.stop();
  aside(b.storeDir);
  b.run(['datastore', 'init', b.storeDir]);
  await b.start();
}

/** `coldvault ARGS` as `node`, measured (wall, CPU, peak RSS), with node2's serve CPU and others' CPU over it */
async function timed(cluster, node, args, tmp, nodeArgs = []) {
  const server = cluster.nodes[1];
  const [cmd, argv] = node.nsArgv(process.execPath, [...nodeArgs, node.cli, ...args]);
  const busy0 = busySeconds();
  const serve0 = server.serveCpuSeconds();
  const r = await measure(cmd, argv, { env: { COLDVAULT_CONFIG: node.configPath }, tmp });
  const serveCpu = server.serveCpuSeconds() - serve0;
  const own = r.cpuSeconds + (Number.isFinite(serveCpu) ? serveCpu : 0);
  return {
    seconds: r.seconds,
    cpuSeconds: r.cpuSeconds,
    serveCpuSeconds: serveCpu,
    rssKiB: r.rssKiB,
    others: othersShare(busy0, busySeconds(), own, r.seconds),
    stdout: r.stdout,
    stderr: r.stderr,
  };
}

/** The newest task of node1 (the job run just done): its guest report and log line about the wire */
function lastJobTask(node) {
  const tasks = JSON.parse(node.run(['task', 'list', '--limit', '5', '--json']));
  const task = tasks.find((t) => t.type === 'job' || t.job === 'p') ?? tasks[0];
  const guest = task?.result?.guests?.[0];
  if (!guest || guest.status !== 'ok') throw new Error(`push failed: ${JSON.stringify(task)}`);
  const log = node.run(['task', 'log', task.id]);
  return { guest, taskId: task.id, wireLine: /on the wire: .*/.exec(log)?.[0] ?? '', log };
}

/** node2's side of the push: its newest upload task's summary line (chunks and digests asked about) */
function uploadSummary(node) {
  const task = JSON.parse(node.run(['task', 'list', '--limit', '5', '--json'])).find((t) => t.type === 'upload');
  if (!task) return '';
  return /received \d+ chunk.*/.exec(node.run(['task', 'log', task.id]))?.[0] ?? '';
}

function newestVersion(node, extra) {
  const list = JSON.parse(node.run(['list', VMID, ...extra, '--json']));
  const versions = (Array.isArray(list) ? list : (list.versions ?? [])).map((v) => Number(v.version));
  return Math.max(...versions);
}

async function backupStep(cluster, image, plan, localStore, tmp, full) {
  const a = cluster.nodes[0];
  useImage(a, image);
  warmImage(image, plan);
  const local = await timed(cluster, a, ['backup', VMID, '--store', localStore, '--json'], tmp);
  warmImage(image, plan);
  const push = await timed(cluster, a, ['job', 'run', 'p'], tmp);
  const task = lastJobTask(a);
  const received = uploadSummary(cluster.nodes[1]);
  return { local, push: { ...push, stdout: undefined, guest: task.guest, wireLine: task.wireLine, received, full } };
}

async function restoreStep(cluster, localStore, tmp, imageSha) {
  const a = cluster.nodes[0];
  const out = {};
  for (const [key, newId, extra] of [
    ['local', '201', ['--store', localStore]],
    ['remote', '202', ['--remote', 'node2', '--store', 'main']],
  ]) {
    const version = newestVersion(a, extra);
    const r = await timed(cluster, a, ['restore', VMID, '--version', String(version), '--new-id', newId, ...extra], tmp);
    const disk = join(a.storageDir, 'images', newId, `vm-${newId}-disk-0.raw`);
    const sha = await sha256File(disk);
    if (sha !== imageSha) throw new Error(`${key} restore of version ${version}: SHA-256 ${sha} differs from the image's ${imageSha}`);
    rmSync(join(a.storageDir, 'images', newId), { recursive: true, force: true });
    rmSync(join(a.guestsDir, `${newId}.conf`), { force: true });
    out[key] = { ...r, stdout: undefined, version, sha256ok: true };
  }
  return out;
}

/** One round: fresh stores, full (local, push), nightly (local, push), restores (local, remote). */
export async function benchRound(cluster, images, localStore, tmp, log) {
  await freshStores(cluster, localStore);
  log('full: local backup, then push');
  const full = await backupStep(cluster, images.full, images.plan, localStore, tmp, true);
  log(`  local ${full.local.seconds.toFixed(2)} s, push ${full.push.seconds.toFixed(2)} s (${full.push.wireLine})`);
  log('nightly (2% rewritten): local backup, then push');
  const nightly = await backupStep(cluster, images.nightly, images.plan, localStore, tmp, false);
  log(`  local ${nightly.local.seconds.toFixed(2)} s, push ${nightly.push.seconds.toFixed(2)} s (${nightly.push.wireLine})`);
  log('restore of the nightly version: local, then --remote node2');
  const restore = await restoreStep(cluster, localStore, tmp, images.nightlySha);
  log(`  local ${restore.local.seconds.toFixed(2)} s, remote ${restore.remote.seconds.toFixed(2)} s`);
  const storeBytes = Number(sh('du', ['-sb', cluster.nodes[1].storeDir]).split(/\s/)[0]);
  return { full, nightly, restore, remoteStoreBytes: storeBytes };
}

const profArgs = (dir) => ['--cpu-prof', `--cpu-prof-dir=${dir}`];

function profileOf(dir) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`${dir}: no .cpuprofile was written`);
  return summarizeProfiles(files.map((f) => join(dir, f)));
}

/** One process of `node`, measured under --cpu-prof: its figures and profile summary */
async function profiled(cluster, node, args, dir, tmp) {
  mkdirSync(dir, { recursive: true });
  const r = await timed(cluster, node, args, tmp, profArgs(dir));
  return { seconds: r.seconds, cpuSeconds: r.cpuSeconds, serveCpuSeconds: r.serveCpuSeconds, profile: profileOf(dir) };
}

/**
 * Where the time goes (not part of the targets: the profiler slows what it watches): a fresh round
 * of local backup, full push and remote restore, each client and node2's serve under --cpu-prof
 * (serve restarted with it for the push and again for the restore: one profile each).
 */
export async function profileRound(cluster, images, localStore, tmp, profDir, log) {
  const [a, b] = cluster.nodes;
  await freshStores(cluster, localStore);
  useImage(a, images.full);
  const out = {};
  warmImage(images.full, images.plan);
  out.local = await profiled(cluster, a, ['backup', VMID, '--store', localStore, '--json'], join(profDir, 'local'), tmp);
  for (const [key, args] of [
    ['push', ['job', 'run', 'p']],
    ['restore', ['restore', VMID, '--version', '1', '--new-id', '203', '--remote', 'node2', '--store', 'main']],
    ['localRestore', ['restore', VMID, '--version', '1', '--new-id', '204', '--store', localStore]],
  ]) {
    await b.stop();
    const serveDir = join(profDir, `${key}-serve`);
    mkdirSync(serveDir, { recursive: true });
    await b.start(profArgs(serveDir));
    if (key === 'push') warmImage(images.full, images.plan);
    out[key] = await profiled(cluster, a, args, join(profDir, key), tmp);
    await b.stop(); // serve writes its profile as it exits
    if (key !== 'localRestore') out[key].serve = profileOf(serveDir);
    log(`  profiled ${key}: ${out[key].seconds.toFixed(2)} s`);
  }
  await b.start();
  for (const id of ['203', '204']) {
    rmSync(join(a.storageDir, 'images', id), { recursive: true, force: true });
    rmSync(join(a.guestsDir, `${id}.conf`), { force: true });
  }
  return out;
}

/**
 * The link's floor (lib/tls-probe.mjs): `bytes` sent over plain Node TLS from node1 to node2 (node2's
 * certificate, one connection, 4 MiB writes), nothing of coldvault around it; `rounds` times.
 */
export async function tlsProbe(cluster, bytes, rounds = 3) {
  const out = [];
  for (let i = 0; i < rounds; i++) out.push(await probePair(cluster, ['server'], ['client', String(bytes)]));
  return out;
}

/**
 * The restore direction's floor (lib/tls-probe.mjs source/sink): `bytes` sent from node2 to node1
 * over `conns` TLS connections at once (node2's certificate), read on node1 with `onread`, once
 * landing in 4 MiB buffers as a restore's blobs do and once into a small buffer that stays in the
 * cache; node1's CPU for that is what receiving a remote restore's bytes costs, on top of the local
 * restore's own work. `rounds` times each.
 */
export async function tlsSinkProbe(cluster, bytes, conns = 8, rounds = 3) {
  const out = [];
  for (let i = 0; i < rounds; i++) {
    for (const landing of ['land', 'reuse']) {
      const got = await probePair(cluster, ['source', String(bytes), String(conns)], ['sink', String(bytes), String(conns), landing]);
      if (got.bytes < bytes) throw new Error(`tls probe sink got ${got.bytes} of ${bytes} bytes`);
      out.push({ ...got, conns });
    }
  }
  return out;
}

/**
 * One run of lib/tls-probe.mjs: its listening side (`listen`: mode and arguments after HOST PORT CERT
 * KEY) on node2 with node2's certificate, then its connecting side (`dial`: mode and arguments after
 * HOST PORT) on node1; answers the JSON line node1's side printed, once node2's side has exited.
 */
async function probePair(cluster, listen, dial) {
  const [a, b] = cluster.nodes;
  const probe = join(import.meta.dirname, 'tls-probe.mjs');
  const tlsDir = join(b.stateDir, 'tls');
  const [mode, ...rest] = listen;
  const [scmd, sargv] = b.nsArgv(process.execPath, [probe, mode, b.address, '8443', join(tlsDir, 'cert.pem'), join(tlsDir, 'key.pem'), ...rest]);
  const server = spawn(scmd, sargv, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    server.stdout.once('data', resolve);
    server.once('exit', (code) => reject(new Error(`tls probe ${mode} exited with ${code}`)));
  });
  const [ccmd, cargv] = a.nsArgv(process.execPath, [probe, dial[0], b.address, '8443', ...dial.slice(1)]);
  const got = JSON.parse(sh(ccmd, cargv));
  await new Promise((resolve) => (server.exitCode === null ? server.once('exit', resolve) : resolve()));
  return got;
}

/**
 * The bench image and its nightly copy (2% of the regions rewritten) under `dir`/images, as
 * bench/run.mjs makes them: `regions` of 4 MiB, 55% zero, 20% random, the rest text; SHA-256 of both.
 */
export async function makeBenchImages(dir, regions) {
  const plan = planImage({ regions, shares: { zero: 0.55, random: 0.2 }, seed: 20261127 });
  const full = join(dir, 'images', 'full.raw');
  const nightly = join(dir, 'images', 'nightly.raw');
  mkdirSync(join(dir, 'images'), { recursive: true });
  const key = JSON.stringify({ regions, seed: 20261127 });
  writeImage(full, plan, 'full', key);
  writeImage(nightly, plan, 'nightly', key, full);
  return { plan, full, nightly, fullSha: await sha256File(full), nightlySha: await sha256File(nightly) };
}
