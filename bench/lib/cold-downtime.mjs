/**
 * Part 2 of bench/cold-snapshots.mjs: how long the tiny real QEMU guest is off in a `coldvault job
 * run` (stop mode, snapshot auto) when its disk is on XFS (reflink=1: cold snapshot, the guest runs
 * again before its disk is read) and on ext4 (no reflink: off for the whole read). Per variant: a
 * fresh filesystem on a loop device, the guest's disk made and filled, the guest booted (its boot time
 * alone), then two job runs into a fresh datastore (the first reads everything; on XFS the second is
 * a changed-extent nightly), each with the page cache dropped before. Per run: coldvault's downtimeMs
 * (`list --json`) and the parts of its log line, the guest's boot after the start (start command to
 * the guest's "waiting for the power button"), the outage the guest's users see (shutdown request
 * to ready again), and the whole job's wall time.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { dropCaches, measure } from './exec.mjs';
import { bootGuest, killGuest, lastStartAt, makeGuestDisk, makeGuestLab, taskLines, watchSerial } from './guest-lab.mjs';
import { mountLoopFs } from './loopfs.mjs';
import { busySeconds, othersShare } from './machine.mjs';

const GiB = 2 ** 30;
const OFF_LINE = /was off for (\d\d):(\d\d):(\d\d) \(shutdown (\d+\.\d+) s, snapshot (\d+\.\d+) s, start (\d+\.\d+) s\)/;
const VMID = '101';

export async function benchDowntime({ repo, cli, scratch, tmp, variants, runs, log }) {
  const out = [];
  for (const v of variants) out.push(await benchVariant({ repo, cli, scratch, tmp, v, runs, log }));
  return out;
}

async function benchVariant({ repo, cli, scratch, tmp, v, runs, log }) {
  const root = join(scratch, `dt-${v.fs}-${v.label}`);
  rmSync(root, { recursive: true, force: true });
  const fs = mountLoopFs({ kind: v.fs, image: join(root, `${v.fs}.img`), mnt: join(root, 'vz'), sizeBytes: v.diskBytes + 2 * GiB });
  let lab;
  try {
    lab = await makeGuestLab({ repo, root, storageDir: fs.mnt, storeDir: join(root, 'store'), vmid: VMID });
    log(`downtime ${v.fs} ${v.label}: making the guest's disk (${v.diskBytes / GiB} GiB, ${v.dataBytes / GiB} GiB of data)`);
    const t0 = Date.now();
    await makeGuestDisk(lab, v);
    const madeIn = (Date.now() - t0) / 1000;
    const bootAlone = await bootGuest(lab);
    log(`downtime ${v.fs} ${v.label}: disk made in ${madeIn.toFixed(0)} s, guest booted in ${bootAlone.toFixed(1)} s`);
    const cv = (args) => measure(process.execPath, [cli, ...args, '--config', lab.configPath], { tmp });
    await cv(['job', 'add', 'bench', '--store', lab.storeDir, '--vmid', VMID, '--snapshot', 'auto']);
    const results = [];
    for (let run = 1; run <= runs; run++) {
      results.push(await jobRun(lab, cv, run));
      const r = results.at(-1);
      log(
        `downtime ${v.fs} ${v.label} run ${run}: off ${(r.downtimeMs / 1000).toFixed(2)} s (shutdown ${r.shutdown} s, snapshot ${r.snapshot} s, start ${r.start} s), boot ${r.bootSeconds.toFixed(2)} s, outage ${r.outageSeconds.toFixed(2)} s, job ${r.jobSeconds.toFixed(1)} s`,
      );
    }
    return { ...v, diskMadeSeconds: madeIn, bootAlone, runs: results };
  } finally {
    if (lab) await killGuest(lab);
    fs.cleanup();
    rmSync(root, { recursive: true, force: true });
  }
}

async function jobRun(lab, cv, run) {
  dropCaches();
  const watcher = watchSerial(lab);
  const busy0 = busySeconds();
  const m = await cv(['job', 'run', 'bench']);
  const others = othersShare(busy0, busySeconds(), m.cpuSeconds, m.seconds);
  const seen = await watcher.stop();
  const taskId = /^task (\S+)$/m.exec(m.stdout)?.[1];
  if (!taskId) throw new Error(`job run printed no task id:\n${m.stdout}`);
  const lines = await taskLines(lab, taskId);
  const versions = JSON.parse((await cv(['list', VMID, '--store', lab.storeDir, '--json'])).stdout);
  const version = versions.at(-1);
  return summarize({ run, m, others, seen, lines, version, startAt: lastStartAt(lab) });
}

const timeOf = (lines, re) => lines.find((l) => re.test(l.message))?.at;

function summarize({ run, m, others, seen, lines, version, startAt }) {
  const off = OFF_LINE.exec(lines.find((l) => OFF_LINE.test(l.message))?.message ?? '');
  if (!off) throw new Error(`no 'was off for' line in the task log:\n${lines.map((l) => l.message).join('\n')}`);
  if (seen.readyAt === undefined) throw new Error('the guest did not come back ready after the job');
  const stopAt = timeOf(lines, /^stopping virtual guest$/);
  const onlineAt = timeOf(lines, /^guest is online again/);
  const firstReadAt = timeOf(lines, /^now save file '.*\.raw'/);
  const [shutdown, snapshot, start] = [off[4], off[5], off[6]].map(Number);
  const bootSeconds = (seen.readyAt - startAt) / 1000;
  const snapshotLine = lines.find((l) => /cold snapshot/.test(l.message))?.message ?? '';
  const readLine = lines.find((l) => /changed since the base|reading every chunk/.test(l.message))?.message;
  return {
    run,
    jobSeconds: m.seconds,
    others,
    downtimeMs: version?.downtimeMs ?? NaN,
    version: version?.version,
    offLine: off[0],
    shutdown,
    snapshot,
    start,
    bootSeconds,
    outageSeconds: (seen.readyAt - stopAt) / 1000,
    guestSawButtonAfter: seen.pressedAt !== undefined ? (seen.pressedAt - stopAt) / 1000 : undefined,
    targetSeconds: shutdown + bootSeconds + 1,
    runningBeforeRead: onlineAt !== undefined && firstReadAt !== undefined ? onlineAt < firstReadAt : undefined,
    onlineToFirstRead: onlineAt !== undefined && firstReadAt !== undefined ? (firstReadAt - onlineAt) / 1000 : undefined,
    snapshotUsed: /^cold snapshot of disk/.test(snapshotLine),
    snapshotLine,
    readLine,
  };
}
