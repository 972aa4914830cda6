#!/usr/bin/env node
/**
 * The benchmark of issue 12 (cluster mode), as root: `node bench/cluster.mjs [--quick]` (see
 * bench/README.md). Two real `coldvault serve` nodes in network namespaces on a veth bridge
 * (lib/cluster-netns.mjs), the bench image (lib/images.mjs: zero, random and text regions, 2 GiB;
 * --quick 512 MiB) as guest 101's disk on node1, and per round (lib/cluster-steps.mjs): local backup
 * vs push to node2, the nightly push's bytes on the wire, local vs remote restore. Writes the block
 * "cluster" of bench/RESULTS.md (lib/cluster-report.mjs, lib/sections.mjs). Everything it made is
 * removed at the end, also after a failure or Ctrl-C (namespaces, serves, scratch folder).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BenchCluster, sweepStaleBenchNamespaces } from './lib/cluster-netns.mjs';
import { fsyncTrace } from './lib/cluster-fsync.mjs';
import { renderCluster } from './lib/cluster-report.mjs';
import { benchRound, profileRound, setupRing, makeBenchImages, sha256File, tlsProbe, tlsSinkProbe } from './lib/cluster-steps.mjs';
import { sh } from './lib/exec.mjs';
import { REGION } from './lib/images.mjs';
import { freeGiB, loadAverage, machineInfo } from './lib/machine.mjs';
import { replaceBlock } from './lib/sections.mjs';
import { benchOptions, commonOptions } from './lib/bench-options.mjs';

const REPO = resolve(import.meta.dirname, '..');
const started = Date.now();

const { values: opt } = parseArgs({
  options: {
    ...commonOptions(REPO, '/var/tmp/coldvault-cluster-bench'),
    'no-profile': { type: 'boolean', default: false },
    pin: { type: 'boolean', default: false },
  },
});

if (opt.help) {
  console.log(`usage: node bench/cluster.mjs [--quick] [--rounds N] [--dir DIR] [--out RESULTS.md] [--json FILE] [--no-build] [--no-profile] [--from-json FILE]
  --quick          a 512 MiB image, 1 round (checks the script; about a minute)
  --rounds N       rounds (default 3; quick 1), each with fresh datastores; the table shows medians
  --dir            scratch folder (default /var/tmp/coldvault-cluster-bench; removed at the end)
  --pin            node1 on CPU 0, node2 on CPU 1 (taskset): each node a core of its own, as on two
                   machines (the local backup and restore run on node1's core too); writes the
                   block "cluster-pinned" instead of "cluster"
  --no-profile     no extra round under --cpu-prof (where the time goes: client and node2's serve), no
                   push under strace (node2's fsyncs per file and thread; only when strace is installed)
  --from-json FILE measure nothing: write the block again from the --json FILE of an earlier run`);
  process.exit(0);
}

const { fail, log, quick, rounds, regions, dir } = benchOptions('cluster', opt, started, 3);
let cluster;

function preflight() {
  if (process.getuid?.() !== 0) fail('run it as root (network namespaces)');
  for (const cmd of ['ip', 'nsenter', '/usr/bin/time']) {
    if (sh('/bin/sh', ['-c', `command -v ${cmd}`], { allowFail: true }) === '') fail(`${cmd} is missing (iproute2, util-linux, time)`);
  }
  mkdirSync(dir, { recursive: true });
  const needGiB = ((regions * REGION) / 2 ** 30) * 6 + 1;
  if (freeGiB(dir) < needGiB) fail(`${dir} has ${freeGiB(dir).toFixed(0)} GiB free, the bench needs about ${needGiB.toFixed(0)} GiB`);
  if (!opt['no-build']) {
    log('building coldvault (npm run build)');
    sh('npm', ['run', 'build'], { cwd: REPO });
  }
}

const makeImages = () => makeBenchImages(dir, regions);

/** the RESULTS.md block of a run: pinned runs have their own beside the shared-cores one */
function blockName(r) {
  return r.pinned ? 'cluster-pinned' : 'cluster';
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cluster?.destroySync();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}

async function main() {
  sweepStaleBenchNamespaces();
  rmSync(dir, { recursive: true, force: true });
  preflight();
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const r = { quick, rounds, startedAt: new Date(started).toISOString(), machine: machineInfo(dir), roundsData: [] };
  r.machine.coldvault = `${sh('git', ['-C', REPO, 'describe', '--always', '--dirty'])}, node ${process.version}`;
  log(`making the ${(regions * REGION) / 2 ** 20} MiB image and its nightly copy`);
  const images = await makeImages();
  r.image = { size: images.plan.size, counts: images.plan.counts, changed: images.plan.changed.length, regions };
  cluster = new BenchCluster(join(dir, 'nodes'), join(REPO, 'bin', 'coldvault.js')).build(2);
  if (opt.pin) [cluster.nodes[0].cpus, cluster.nodes[1].cpus] = ['0', '1'];
  r.pinned = opt.pin;
  r.link = { subnet: cluster.subnet, veth: cluster.linkInfo(cluster.nodes[0]) };
  await setupRing(cluster);
  for (let round = 1; round <= rounds; round++) {
    log(`round ${round}/${rounds} (load average ${loadAverage()})`);
    r.roundsData.push({ round, load: loadAverage(), ...(await benchRound(cluster, images, join(dir, 'local-store'), tmp, log)) });
  }
  const wire = r.roundsData[0].full.push.guest.wireBytes;
  log(`the link's floor: ${(wire / 2 ** 20).toFixed(0)} MiB over plain Node TLS, node1 -> node2, 3 times`);
  r.tlsProbe = await tlsProbe(cluster, wire);
  log(`the restore direction's floor: the same bytes node2 -> node1 over 8 TLS connections, read with onread, 3 times`);
  r.tlsSink = await tlsSinkProbe(cluster, wire);
  r.machine['load after'] = `load average ${loadAverage()}`;
  if (!opt['no-profile']) {
    log('profiled round (where the time goes): local backup, push, remote and local restore under --cpu-prof');
    r.profile = await profileRound(cluster, images, join(dir, 'local-store'), tmp, join(dir, 'profiles'), log);
    if (sh('/bin/sh', ['-c', 'command -v strace'], { allowFail: true }) !== '') {
      log("syncs of node2's serve during a full push (strace)");
      r.fsync = await fsyncTrace(cluster, images, join(dir, 'local-store'), join(tmp, 'strace.txt'), log);
    }
  }
  r.totalSeconds = (Date.now() - started) / 1000;
  r.command = `node bench/cluster.mjs ${process.argv.slice(2).join(' ')}`.trim();
  if (opt.json) writeFileSync(opt.json, `${JSON.stringify(r, null, 2)}\n`);
  const text = renderCluster(r);
  replaceBlock(resolve(opt.out), blockName(r), text);
  process.stdout.write(`${text}\n`);
  log(`wrote ${opt.out} (total ${(r.totalSeconds / 60).toFixed(1)} min)`);
}

if (opt['from-json']) {
  const r = JSON.parse(readFileSync(opt['from-json'], 'utf8'));
  replaceBlock(resolve(opt.out), blockName(r), renderCluster(r));
  process.exit(0);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`\ncluster bench FAILED: ${err?.stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  await cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
}
