/**
 * Renders bench/cold-snapshots.mjs's results as the Markdown block "Issue 11: cold snapshots and
 * changed-extent nightlies" of bench/RESULTS.md: header (command, date, machine), the targets with
 * met / missed, the nightly-cost table and the downtime table. Times are wall-clock seconds of the
 * whole command (process start to exit); median [min–max] over the rounds.
 */
import { median } from './report.mjs';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const size = (b) => (!Number.isFinite(b) ? 'n/a' : b >= GiB ? `${f(b / GiB, 2)} GiB` : `${f(b / MiB, 0)} MiB`);
const pct = (x) => `${f(100 * x, 0)}%`;
const met = (ok) => (ok ? '**met**' : '**missed**');
const secs = (steps) => steps.map((s) => s.seconds);

function timeCell(steps, key = 'seconds') {
  const xs = steps.map((s) => s[key]);
  if (xs.length === 1) return f(xs[0]);
  return `${f(median(xs))} [${f(Math.min(...xs))}–${f(Math.max(...xs))}]`;
}

export function nightlyTargets(n) {
  const s = n.steps;
  const full = { auto: median(secs(s.fullAuto)), off: median(secs(s.fullOff)) };
  const unchanged = median(secs(s.unchanged));
  const changed = median(secs(s.changed));
  const reference = median(s.reference.map((x) => x.inProcess));
  const referenceProcess = median(secs(s.reference));
  const borgNightly = n.borg.nightly.seconds;
  const round1 = s.changed[0].seconds;
  return [
    [
      "first (full) backup with snapshots within 5% of today's (`--snapshot off`)",
      `${f(full.auto / full.off, 3)}x (${f(full.auto)} s vs ${f(full.off)} s)`,
      full.auto <= 1.05 * full.off,
    ],
    [`nightly of the unchanged ${size(n.plan.size)} disk (${size(n.plan.dataBytes)} of data) <= 1 s`, `${f(unchanged)} s`, unchanged <= 1],
    [
      `nightly after 1% rewritten <= 1.5x reading and hashing that 1% (cold cache)`,
      `${f(changed / reference)}x (${f(changed)} s vs ${f(reference)} s, the read-and-hash loop; per round ${perRound(s)}; ${f(changed / referenceProcess)}x the reference's whole process, ${f(referenceProcess)} s)`,
      changed <= 1.5 * reference,
    ],
    [
      'nightly >= 20x faster than `borg create --chunker-params fixed,4194304` of the same nightly',
      `${f(borgNightly / round1, 1)}x (borg ${f(borgNightly, 1)} s, coldvault ${f(round1)} s)`,
      borgNightly >= 20 * round1,
    ],
  ];
}

/** Each round's nightly over the same round's reference (the pairs share the machine's load of that moment). */
const perRound = (s) => s.changed.map((x, i) => `${f(x.seconds / s.reference[i].inProcess)}x`).join(', ');

export function downtimeTargets(variants) {
  return variants
    .filter((v) => v.fs === 'xfs')
    .flatMap((v) =>
      v.runs.map((r) => [
        `XFS, ${size(v.diskBytes)} disk with ${size(v.dataBytes)} of data, run ${r.run}: off <= shutdown + boot + 1 s`,
        `outage ${f(r.outageSeconds)} s vs ${f(r.targetSeconds)} s (shutdown ${f(r.shutdown, 1)} + boot ${f(r.bootSeconds)} + 1)`,
        r.outageSeconds <= r.targetSeconds,
      ]),
    );
}

function stepRow(name, steps, note = '') {
  const first = steps[0];
  const inProc = steps.every((x) => Number.isFinite(x.inProcess)) ? timeCell(steps, 'inProcess') : '—';
  const read = Number.isFinite(first.fileReadBytes) ? size(median(steps.map((x) => x.fileReadBytes))) : note;
  const base = Number.isFinite(first.baseBytes) ? size(median(steps.map((x) => x.baseBytes))) : '—';
  const cpu = f(median(steps.map((x) => x.cpuSeconds)), 1);
  const rss = f(Math.max(...steps.map((x) => x.rssKiB)) / 1024, 0);
  const others = pct(Math.max(...steps.map((x) => x.others)));
  return `| ${name} | ${timeCell(steps)} | ${steps.length} | ${inProc} | ${read} | ${base} | ${cpu} | ${rss} | ${others} |`;
}

function nightlyTable(n) {
  const s = n.steps;
  return [
    "| step | time s, median [min–max] | n | in-process s | read from the disk | taken from the base | CPU s | peak RSS MiB | others' CPU, max |",
    '|---|---|---|---|---|---|---|---|---|',
    stepRow('(b) full backup, `--snapshot off` (today)', s.fullOff),
    stepRow('(a) full backup, `--snapshot auto`', s.fullAuto),
    stepRow('(c) nightly, disk unchanged', s.unchanged),
    stepRow(`(d) nightly, 1% rewritten (${size(s.changed[0].changedBytes)})`, s.changed),
    stepRow('reference: read + SHA-256 of that 1% from the snapshot, cold', s.reference, size(s.reference[0].bytes)),
    `| reference, warm (right after) | ${timeCell(s.referenceWarm)} | ${s.referenceWarm.length} | ${timeCell(s.referenceWarm, 'inProcess')} | ${size(s.referenceWarm[0].bytes)} | — | | | |`,
    stepRow('start-up floor: `coldvault --version`, cold', s.version, '—'),
    stepRow('start-up floor: `coldvault list 101 --json`, cold', s.list, '—'),
    stepRow('(e) borg create, first archive (base state)', [n.borg.first], 'whole disk'),
    stepRow('(e) borg create, nightly of round 1', [n.borg.nightly], 'whole disk'),
  ].join('\n');
}

function downtimeTable(variants) {
  const rows = variants.flatMap((v) =>
    v.runs.map(
      (r) =>
        `| ${v.fs} | ${size(v.diskBytes)} / ${size(v.dataBytes)} | ${r.run} | ${r.snapshotUsed ? 'yes' : 'no'} | ${f(r.downtimeMs / 1000)} | ${f(r.shutdown, 1)} / ${f(r.snapshot)} / ${f(r.start, 1)} | ${f(r.bootSeconds)} | ${f(r.outageSeconds)} | ${f(r.targetSeconds)} ${r.outageSeconds <= r.targetSeconds ? '✓' : '✗'} | ${r.runningBeforeRead === undefined ? 'n/a' : r.runningBeforeRead ? `yes (${f(r.onlineToFirstRead)} s before)` : 'no'} | ${f(r.jobSeconds, 1)} | ${pct(r.others)} |`,
    ),
  );
  return [
    "| fs | disk / data | run | cold snapshot | downtimeMs, s | shutdown / snapshot / start s (log line) | boot s | outage s | shutdown + boot + 1 s | running before the first read | job s | others' CPU |",
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

const targetsTable = (rows) => ['| target | measured | met? |', '|---|---|---|', ...rows.map(([t, m, ok]) => `| ${t} | ${m} | ${met(ok)} |`)].join('\n');

export function renderColdSnapshots(r) {
  const out = [`## Issue 11: cold snapshots and changed-extent nightlies`, ''];
  out.push(
    `\`${r.command}\` (as root), started ${r.startedAt}, total runtime **${f(r.totalSeconds / 60, 1)} min**${r.quick ? ' (**--quick**: small sizes, a check of the script, not the figures of the issue)' : ''}.`,
  );
  out.push(
    "Times are wall-clock seconds of the whole command (process start to exit, fsyncs included); the page cache is dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`) before every timed step, for every tool. \"Others' CPU\" is the share of the machine's CPUs used during the step by everything but the measured command: other developers' work, the QEMU guest, and kernel threads, among them the loop devices' workers and the page cache's writeback, which do part of the step's own I/O.",
    '',
  );
  const targets = [...(r.nightly ? nightlyTargets(r.nightly) : []), ...(r.downtime ? downtimeTargets(r.downtime) : [])];
  out.push('### Targets', '', targetsTable(targets), '');
  if (r.nightly) out.push(...nightlySection(r.nightly));
  if (r.downtime) out.push(...downtimeSection(r.downtime, r.skippedVariants));
  out.push('### Machine', '', ...Object.entries(r.machine).map(([k, v]) => `- ${k}: ${v}`), ...r.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}

function nightlySection(n) {
  return [
    `### Nightly backup cost: ${size(n.plan.size)} raw disk, ${size(n.plan.dataBytes)} of data, on XFS`,
    '',
    `A ${size(n.plan.size)} sparse raw file on XFS (\`mkfs.xfs -m reflink=1\` on a loop device over a sparse file on the host's ext4): ${n.plan.dataRegions} regions of 4 MiB at seeded places hold AES-CTR keystream (incompressible, unique), the rest are holes. \`coldvault backup 101 --json\` with a guests dir and \`--storage local=<xfs>\` (no hypervisor); the datastore and borg's repository are on the host's ext4, outside the XFS. (b) and (a) each into a fresh datastore; (c) and (d) into the datastore of the last (a), each nightly replacing the base; each round of (d) rewrites another seeded 1% of the data regions in place (pwrite + fsync, 4 MiB-aligned), then backs up; the reference reads exactly those regions from the kept snapshot (the file the nightly read) and SHA-256s them, one after the other, in one Node process (\`bench/lib/hash-regions.mjs\`; in-process = the read-and-hash loop, time = the whole process). borg 1.2: \`${n.borg.command}\` in a repository made with \`--encryption none\`; its first archive is a reflink clone of the disk in its base state, the nightly one a reflink clone of the disk right after round 1's change, at the same path in the archive.`,
    '',
    nightlyTable(n),
    '',
    `Datastore after the full backup: ${size(n.storeBytes)}; borg repository after both archives: ${size(n.borg.repoBytes)}. ${readsCheck(n)}`,
    '',
  ];
}

/** Whether each nightly read exactly what changed (backup --json reads[].fileReadBytes). */
function readsCheck(n) {
  const wrong = [
    ...n.steps.unchanged.filter((x) => x.fileReadBytes !== 0).map((x) => `an unchanged nightly read ${size(x.fileReadBytes)}`),
    ...n.steps.changed
      .filter((x) => x.fileReadBytes !== x.changedBytes)
      .map((x) => `a 1% nightly read ${size(x.fileReadBytes)} of ${size(x.changedBytes)} changed`),
  ];
  return wrong.length
    ? `**Reads not as expected:** ${wrong.join('; ')}.`
    : 'Every unchanged nightly read 0 bytes of the disk and every 1% nightly exactly the rewritten regions (`reads[].fileReadBytes`).';
}

/** The reason part of `no cold snapshot of guest 101: disk 'scsi0' ('...'): REASON; the guest stays off ...` */
const whyNoSnapshot = (line) => `\`...${/\): ([^;]*)/.exec(line)?.[1] ?? line}\``;

function downtimeSection(variants, skipped) {
  return [
    '### Downtime of the tiny real QEMU guest (TCG), `coldvault job run`, snapshot auto',
    '',
    "The tiny guest (`src/cli/demo/tiny-guest.ts`: Debian cloud kernel, busybox /init) under QEMU TCG, its raw disk an ext4 image holding one file of seeded random data, on a fresh XFS (reflink=1) or ext4 filesystem on a loop device; the datastore on the host's ext4. Per variant the guest is booted once, then `coldvault job run` twice (fresh datastore: run 1 reads everything; on XFS run 2 is a changed-extent nightly, on ext4 a full read again). **downtimeMs** is coldvault's own figure (`list --json`: ACPI shutdown request to \"QMP says running\"), its parts from the log line `guest 101 was off for ...`. **boot** is the guest's boot after coldvault ran the start command (the wrapped start command notes the moment) until its console says `waiting for the power button`. **outage** is what the guest's users see: from the task log's `stopping virtual guest` (ms timestamp) to that console line. The target compares the outage with shutdown + boot + 1 s. \"running before the first read\": the task log's `guest is online again` comes before `now save file '...raw'`.",
    '',
    downtimeTable(variants),
    '',
    ...(skipped.length ? [`Not run: ${skipped.join('; ')}.`, ''] : []),
    ...variants.map(
      (v) =>
        `- ${v.fs}, ${size(v.diskBytes)} / ${size(v.dataBytes)}: guest disk made in ${f(v.diskMadeSeconds, 0)} s; first boot alone ${f(v.bootAlone)} s (start command to ready); ${v.runs.map((r) => `run ${r.run}: ${r.snapshotUsed ? 'cold snapshot' : `no snapshot (${whyNoSnapshot(r.snapshotLine)})`}${r.readLine ? `, \`${r.readLine}\`` : ''}`).join('; ')}.`,
    ),
    '',
  ];
}
