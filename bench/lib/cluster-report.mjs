/**
 * Renders bench/cluster.mjs's results as the Markdown block "Issue 12: cluster mode" of
 * bench/RESULTS.md: header (command, date, link), the three targets with met / missed, the steps'
 * table (median [min–max] over the rounds, MB/s, CPU of the client and of node2's serve), the wire
 * figures per round, and the machine with its load average.
 */
import { median } from './report.mjs';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const size = (b) => (!Number.isFinite(b) ? 'n/a' : b >= GiB ? `${f(b / GiB, 2)} GiB` : b >= MiB ? `${f(b / MiB, 1)} MiB` : `${f(b / 1024, 1)} KiB`);
const pct = (x, d = 0) => `${f(100 * x, d)}%`;
const met = (ok) => (ok ? '**met**' : '**missed**');
const mbps = (bytes, s) => bytes / 1e6 / s;

/** how the nodes share the machine's CPUs */
function cores(r) {
  if (!r.pinned) return 'Both nodes run on the same machine: every CPU second of the sender and of the receiver comes out of the same 2 cores.';
  return "Each node has one core of its own (`taskset -c 0` for everything of node1: its CLI commands, the local backup and restore, the TLS probe's client; `taskset -c 1` for node2's serve), as two one-core machines would: the sender's CPU is the local backup's, and the receiver's work does not take from it. (Worker pools size to the CPUs a process may use: one worker each.)";
}

function cell(xs, d = 2) {
  if (xs.length === 1) return f(xs[0], d);
  return `${f(median(xs), d)} [${f(Math.min(...xs), d)}–${f(Math.max(...xs), d)}]`;
}

/** per-step figure arrays over the rounds */
function series(r) {
  const R = r.roundsData;
  const pick = (fn) => R.map(fn);
  return {
    localFull: pick((x) => x.full.local),
    pushFull: pick((x) => x.full.push),
    localNightly: pick((x) => x.nightly.local),
    pushNightly: pick((x) => x.nightly.push),
    restoreLocal: pick((x) => x.restore.local),
    restoreRemote: pick((x) => x.restore.remote),
  };
}

/**
 * The verdicts use the median of the per-round ratios: each round's push (restore) against the local
 * backup (restore) measured just before it, under the same state of the machine. The ratio of the
 * two medians, shown beside it, pairs steps of different rounds and moves with the machine's drift
 * (the local backup took 3.1-3.5 s pinned between rounds of one run).
 */
export function clusterTargets(r) {
  const s = series(r);
  const img = r.image.size;
  const sec = (steps) => median(steps.map((x) => x.seconds));
  const paired = (local, remote) => median(local.map((x, i) => x.seconds / remote[i].seconds));
  const perRound = (local, remote) => local.map((x, i) => f(x.seconds / remote[i].seconds)).join(', ');
  const pushRatio = paired(s.localFull, s.pushFull);
  const wire = median(s.pushNightly.map((x) => x.guest.wireBytes)) / img;
  const restoreRatio = paired(s.restoreLocal, s.restoreRemote);
  const ceiling = restoreCeiling(r, s);
  return [
    [
      `push of the ${size(img)} image to node2 over the veth >= 80% of the local backup rate`,
      `${pct(pushRatio)} (median of the per-round ratios ${perRound(s.localFull, s.pushFull)}; ratio of the medians ${pct(sec(s.localFull) / sec(s.pushFull))}: push ${f(mbps(img, sec(s.pushFull)), 0)} MB/s, ${f(sec(s.pushFull))} s; local ${f(mbps(img, sec(s.localFull)), 0)} MB/s, ${f(sec(s.localFull))} s)`,
      pushRatio >= 0.8,
    ],
    [
      `nightly push with 2% of the regions rewritten: <= 3% of the image's bytes on the wire`,
      `${pct(wire, 2)} (${size(median(s.pushNightly.map((x) => x.guest.wireBytes)))} of ${size(img)}, counted by the client)`,
      wire <= 0.03,
    ],
    [
      'restore from the remote store >= 80% of the local restore rate',
      `${pct(restoreRatio)} (median of the per-round ratios ${perRound(s.restoreLocal, s.restoreRemote)}; ratio of the medians ${pct(sec(s.restoreLocal) / sec(s.restoreRemote))}: remote ${f(mbps(img, sec(s.restoreRemote)), 0)} MB/s, ${f(sec(s.restoreRemote))} s; local ${f(mbps(img, sec(s.restoreLocal)), 0)} MB/s, ${f(sec(s.restoreLocal))} s)${ceiling ? `; ceiling on this machine ${pct(ceiling.ratio)} (below)` : ''}`,
      restoreRatio >= 0.8,
    ],
  ];
}

/**
 * The best remote-restore ratio one core for node1 allows (pinned runs with the sink probe): a remote
 * restore does the local restore's work (verify every chunk, write the disk) but for reading the chunk
 * files (O_DIRECT: the disk's DMA puts them in memory, little CPU), and on the same core receives the
 * blobs over TLS, which costs at least what the sink needs for the same bytes read into a buffer that
 * stays in the cache. With its core busy all the time (perf: no idle), it takes at least local CPU +
 * that. `landCpu`: the sink landing the bytes in chunk-sized buffers, as a restore does; not a bound
 * (the restore's worker then reads blobs still partly in the cache, which the local restore's
 * O_DIRECT reads never are: a --quick run beat local CPU + landing), but most of the distance to the
 * ceiling.
 */
export function restoreCeiling(r, s = series(r)) {
  if (!r.pinned || !r.tlsSink) return undefined;
  const local = median(s.restoreLocal.map((x) => x.seconds));
  const localCpu = median(s.restoreLocal.map((x) => x.cpuSeconds));
  const sinkCpu = (landing) => {
    const runs = r.tlsSink.filter((p) => Boolean(p.land ?? false) === landing);
    return runs.length > 0 ? median(runs.map((p) => p.cpuSeconds)) : undefined;
  };
  const cachedCpu = sinkCpu(false);
  if (cachedCpu === undefined) return undefined;
  return { ratio: local / (localCpu + cachedCpu), local, localCpu, sinkCpu: cachedCpu, landCpu: sinkCpu(true) };
}

function stepRow(name, steps, img) {
  const secs = steps.map((x) => x.seconds);
  const guestSecs = steps.every((x) => x.guest) ? cell(steps.map((x) => x.guest.seconds)) : '—';
  const wire = steps.every((x) => x.guest) ? size(median(steps.map((x) => x.guest.wireBytes))) : '—';
  const serve = steps.every((x) => Number.isFinite(x.serveCpuSeconds)) ? f(median(steps.map((x) => x.serveCpuSeconds)), 1) : '—';
  return `| ${name} | ${cell(secs)} | ${f(mbps(img, median(secs)), 0)} | ${guestSecs} | ${wire} | ${f(median(steps.map((x) => x.cpuSeconds)), 1)} | ${serve} | ${f(Math.max(...steps.map((x) => x.rssKiB)) / 1024, 0)} | ${pct(Math.max(...steps.map((x) => x.others)))} |`;
}

export function renderCluster(r) {
  const s = series(r);
  const img = r.image.size;
  const c = r.image.counts;
  const lines = [
    r.pinned ? '## Issue 12: cluster mode, one core per node (--pin)' : '## Issue 12: cluster mode',
    '',
    `\`${r.command}\` (as root), started ${r.startedAt}, total runtime **${f(r.totalSeconds / 60, 1)} min**, ${r.rounds} round(s)${r.quick ? ' (--quick: the figures say little about the targets)' : ''}.`,
    '',
    `Two nodes, each a real \`coldvault serve\` (built CLI) in its own network namespace, on a veth pair each to a bridge in a third namespace (subnet ${r.link.subnet}, TLS with the node's self-signed certificate, pinned; link: \`${r.link.veth.replace(/\s+/g, ' ').trim()}\`). ${cores(r)} Guest 101 on node1 (hypervisor none: not running), its raw disk the bench image: ${size(img)}, ${r.image.regions} regions of 4 MiB, shuffled: ${c.zero} zero (${c.holes} of them holes), ${c.random} random (AES-CTR), ${c.text} log-like text; the nightly copy has ${r.image.changed} regions (2%) rewritten with new content. Per round, a fresh datastore on node1 (local) and a fresh \`main\` on node2 (serve restarted around it), then: (1) \`coldvault backup 101 --store <local> --json\` on node1; (2) \`coldvault job run p\` on node1, job \`p\` = \`job add p --mode cluster --store main --vmid 101\`, pushing to node2; (3) the same two with the nightly image (the guest's disk is a hard link, swapped); (4) \`coldvault restore 101 --version N --new-id 201 --store <local>\` and \`... --new-id 202 --remote node2 --store main\` of the nightly version, each restored disk SHA-256-checked against the image (all matched).`,
    '',
    'Times are wall-clock seconds of the whole command (process start to exit, fsyncs included; for the push: `job run p`, which also lists the versions on node2 first, opens the upload and finishes it), rates = the logical disk size / that time (MB = 10^6 bytes). "guest s" is the job\'s own figure for the guest (`task list --json`: result.guests[0].seconds). Page cache **warm**: the image\'s data regions are read into the cache before every backup and push; both nodes write chunks with O_DIRECT and a restore reads them with O_DIRECT, so the restores read the stores from the disk, not the cache. "wire" is `result.guests[0].wireBytes` of the job\'s task (bodies sent + received, counted by the client). "serve CPU" is node2\'s serve process (user + sys from /proc) over the step; "client CPU" is the command on node1 (GNU time). "others\' CPU" is the share of the 2 CPUs used by everything else during the step.',
    '',
    '### Targets',
    '',
    '| target | measured | met? |',
    '|---|---|---|',
    ...clusterTargets(r).map(([t, m, ok]) => `| ${t} | ${m} | ${met(ok)} |`),
    '',
    '### Steps',
    '',
    "| step | time s, median [min–max] | MB/s | guest s | wire | client CPU s | serve CPU s | peak RSS MiB (client) | others' CPU, max |",
    '|---|---|---|---|---|---|---|---|---|',
    stepRow('local backup, full (empty store)', s.localFull, img),
    stepRow('push, full (empty `main` on node2)', s.pushFull, img),
    stepRow('local backup, nightly (2% rewritten)', s.localNightly, img),
    stepRow('push, nightly (2% rewritten)', s.pushNightly, img),
    stepRow('restore of the nightly version, local store', s.restoreLocal, img),
    stepRow('restore of the nightly version, `--remote node2`', s.restoreRemote, img),
    '',
    "### Wire per round (from the job's task log)",
    '',
    ...r.roundsData.flatMap((x) => [
      `- round ${x.round} (load average ${x.load}): node2's store after: ${size(x.remoteStoreBytes)}`,
      `  - full push, node1's job log: ${x.full.push.wireLine || 'n/a'}; node2's upload task: ${x.full.push.received || 'n/a'}`,
      `  - nightly push, node1's job log: ${x.nightly.push.wireLine || 'n/a'}; node2's upload task: ${x.nightly.push.received || 'n/a'}`,
    ]),
    '',
    '### Machine',
    '',
    ...Object.entries(r.machine).map(([k, v]) => `- ${k}: ${v}`),
  ];
  if (r.tlsProbe) lines.push('', ...tlsSection(r.tlsProbe));
  if (r.tlsSink) lines.push('', ...sinkSection(r));
  if (r.profile) lines.push('', ...profileSection(r.profile));
  if (r.fsync) lines.push('', ...fsyncSection(r.fsync));
  if (r.notes?.length) lines.push('', '### Where the time goes', '', ...r.notes.map((n) => `- ${n}`));
  return lines.join('\n');
}

const PROFILED = [
  ['local', 'local backup, full'],
  ['push', 'push, full (`job run p`)'],
  ['restore', 'restore, `--remote node2`'],
  ['localRestore', 'restore, local store'],
];

const topList = (p, n = 8) =>
  p.top
    .slice(0, n)
    .map((t) => `${t.name.replace(/ \(coldvault bundle\/[^)]*\)/, ' (coldvault)')} ${f(t.ms / 1000)}`)
    .join('; ');

function profileSection(prof) {
  const lines = [
    '### Where the time goes (one extra round under `node --cpu-prof`)',
    '',
    "Not part of the targets (the profiler slows what it watches). The same steps on fresh stores, the full image, each coldvault process and node2's serve (restarted with `--cpu-prof` for each step) profiled by V8's sampling profiler; a profile per thread (the CLI hashes and compresses in worker threads), summed. Native work (SHA-256, zstd, CRC, TLS encryption in the socket's `writev`, file writes) is counted as self time of the JS function that called it. Seconds of self time:",
    '',
    '| step | wall s | client: threads, CPU s sampled | serve: CPU s sampled |',
    '|---|---|---|---|',
  ];
  for (const [key, name] of PROFILED) {
    const p = prof[key];
    if (!p) continue;
    lines.push(`| ${name} | ${f(p.seconds)} | ${p.profile.threads}, ${f(p.profile.totalMs / 1000)} | ${p.serve ? f(p.serve.totalMs / 1000) : '—'} |`);
  }
  lines.push('');
  for (const [key, name] of PROFILED) {
    const p = prof[key];
    if (!p) continue;
    lines.push(`- **${name}**, client: ${topList(p.profile)}`);
    if (p.serve) lines.push(`  - node2's serve: ${topList(p.serve)}`);
  }
  return lines;
}

function tlsSection(probe) {
  const bytes = probe[0].server.bytes;
  const secs = probe.map((p) => p.seconds);
  return [
    "### The link's floor: plain Node TLS over the same veth",
    '',
    `\`bench/lib/tls-probe.mjs\`: ${size(bytes)} (the full push's bytes on the wire) sent from node1's namespace to node2's over one TLS connection with node2's certificate (${probe[0].server.protocol}, ${probe[0].server.cipher}), 4 MiB writes, nothing of coldvault around it (no HTTP, no hashing, no files); ${probe.length} runs: **${cell(secs)} s**, ${f(mbps(bytes, median(secs)), 0)} MB/s of wire bytes; CPU: sender ${f(median(probe.map((p) => p.cpuSeconds)))} s (after connecting), receiver ${f(median(probe.map((p) => p.server.cpuSeconds)))} s (whole process, start-up included).`,
  ];
}

function sinkSection(r) {
  const probe = r.tlsSink;
  const bytes = probe[0].expected;
  const c = restoreCeiling(r);
  const kind = (landing) => probe.filter((p) => Boolean(p.land ?? false) === landing);
  const describe = (runs, how) =>
    runs.length === 0
      ? []
      : [`- ${how}: ${runs.length} runs, ${cell(runs.map((p) => p.seconds))} s; node1's CPU **${f(median(runs.map((p) => p.cpuSeconds)))} s**`];
  return [
    "### The restore direction's floor: receiving over Node TLS",
    '',
    `\`bench/lib/tls-probe.mjs\` source/sink: ${size(bytes)} (the full version's blobs; the nightly version's differ from them by at most the ${size(median(series(r).pushNightly.map((x) => x.guest.wireBytes)))} its push sent) sent from node2's namespace to node1's over ${probe[0].conns} TLS connections at once, read on node1 with \`onread\` (as coldvault's remote reads are), nothing else:`,
    '',
    ...describe(kind(true), 'landing in two 4 MiB buffers per connection in turn, as a restore lands blobs in its chunk buffers'),
    ...describe(kind(false), 'into one 64 KiB buffer per connection, which stays in the cache'),
    ...(c
      ? [
          '',
          `Ceiling of the remote restore on one core: a remote restore does the local restore's work but for reading the chunk files (O_DIRECT: the disk puts them in memory, little CPU) and receives the same bytes over TLS on the same core, which it keeps busy the whole time: it takes at least local restore CPU ${f(c.localCpu)} s + receiving ${f(c.sinkCpu)} s (into a buffer that stays in the cache), so at best **${pct(c.ratio)}** of the local rate (local restore ${f(c.local)} s).${c.landCpu !== undefined ? ` Landing the bytes in chunk-sized buffers instead cost the probe ${f(c.landCpu - c.sinkCpu)} s more; that is information, not a bound (local CPU + landing would give ${pct(c.local / (c.localCpu + c.landCpu))}): perf on a restore shows its checks cost no more for received blobs than for blobs read from the disk (notes in bench/RESULTS.md).` : ''}`,
        ]
      : []),
  ];
}

function fsyncSection(t) {
  return [
    "### Syncs of node2's serve during a full push (strace)",
    '',
    `One more full push on fresh stores (${f(t.pushSeconds)} s under strace, which slows every traced call) with \`strace -f -y -T -e trace=fsync,fdatasync\` on node2's serve: calls per file, on serve's main thread (its event loop: while it syncs, no request is served) or on other threads (libuv's pool). Seconds as strace timed them.`,
    '',
    '| thread | call | file | calls | seconds |',
    '|---|---|---|---|---|',
    ...t.rows.slice(0, 10).map((x) => `| ${x.thread} | ${x.call} | \`${x.path}\` | ${x.calls} | ${f(x.seconds)} |`),
  ];
}
