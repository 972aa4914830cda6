/**
 * The downtime of a real guest: `coldvault job run` (built CLI) shuts the tiny real Linux guest down
 * over ACPI, backs it up and starts it again. The task log says `guest 101 was off for HH:MM:SS
 * (shutdown X s, snapshot Y s, start Z s)`, so does the version's backup.log, the task result records
 * downtimeMs for the guest, and the job mail (a real SMTP server on loopback) shows it in the guest table. No timed assertion: the
 * recorded downtime is checked against the task log's own timestamps (it lies between the lines
 * logged around the shutdown and the start) and against the parts the line names.
 * A guest that was not running (nothing stopped) has no downtime anywhere.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStateDb, TaskStore } from '../../dist/jobs/index.js';
import type { GuestReport } from '../../src/jobs/mail.js';
import { killGuest } from '../helpers/tiny-guest.js';
import { addTinyGuest, bootGuest, cv, makeJobLab, part, startSmtpSink, taskIdOf, type JobLab, versions } from './helpers-jobs.js';

let lab: JobLab;
let sink: Awaited<ReturnType<typeof startSmtpSink>>;

beforeAll(async () => {
  sink = await startSmtpSink();
  lab = await makeJobLab('cv-jdt-', {
    qemu: true,
    mail: { transport: 'smtp', host: '127.0.0.1', port: sink.port, secure: false, tlsRejectUnauthorized: false, from: 'backup@pve.example.com' },
  });
});

afterEach(async () => {
  for (const vmid of lab.vmids) await killGuest(lab.qemuDir, vmid);
});

afterAll(async () => {
  await lab?.cleanup();
  await sink?.close();
});

interface Line {
  time: Date;
  message: string;
}

/** The task's lines (with their millisecond timestamps) and its per-guest result, from the state database. */
function taskOf(taskId: string): { lines: Line[]; guests: GuestReport[] } {
  const db = openStateDb(lab.stateDir);
  try {
    const tasks = new TaskStore(db, lab.stateDir);
    const result = tasks.get(taskId).result as { guests: GuestReport[] };
    return { lines: tasks.lines(taskId), guests: result.guests };
  } finally {
    db.close();
  }
}

function timeOf(lines: Line[], start: string): number {
  const line = lines.find((l) => l.message.startsWith(start));
  if (!line) throw new Error(`no line '${start}' in:\n${lines.map((l) => l.message).join('\n')}`);
  return line.time.getTime();
}

const LINE = /^guest 101 was off for (\d\d):(\d\d):(\d\d) \(shutdown (\d+\.\d+) s, snapshot (\d+\.\d+) s, start (\d+\.\d+) s\)$/;
/** toISOString keeps milliseconds: a line's time may be up to 1 ms before the moment it stands for */
const MS = 2;

describe('downtime of a real guest', () => {
  it('a job that stops the guest: the log line, the task result and the mail agree, within the log timestamps', async () => {
    await addTinyGuest(lab, '101', 'web01');
    await bootGuest(lab, '101');
    expect((await cv(lab, ['job', 'add', 'dt', '--store', lab.storeDir, '--vmid', '101', '--mailto', 'admin@example.com'])).code).toBe(0);
    const before = sink.got.length;
    const run = await cv(lab, ['job', 'run', 'dt']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(await lab.driver!.status('101')).toBe('running');

    const { lines, guests } = taskOf(taskIdOf(run.stdout));
    const matches = lines.flatMap((l) => LINE.exec(l.message) ?? []);
    expect(matches, 'one downtime line').toHaveLength(7);
    const [, hh, mm, ss, shutdown, snapshot, start] = matches.map((m) => String(m));
    const downtimeMs = guests.find((g) => g.vmid === '101')?.downtimeMs;
    expect(downtimeMs).toBeDefined();
    expect(Number.isInteger(downtimeMs)).toBe(true);
    const off = downtimeMs as number;

    // the guest was off from the shutdown request to the start command's return: that is between
    // `stopping virtual guest` and `guest is online again`, and covers all the backup logged in between
    const stopping = timeOf(lines, 'stopping virtual guest');
    const online = timeOf(lines, 'guest is online again');
    expect(off).toBeLessThanOrEqual(online - stopping + MS);
    expect(off).toBeGreaterThanOrEqual(timeOf(lines, 'restarting vm') - timeOf(lines, 'creating archive') - MS);
    // at least the shutdown and the start the line names (each rounded to at most 0.05 s)
    expect(off).toBeGreaterThanOrEqual((Number(shutdown) + Number(start)) * 1000 - 100);
    expect(Number(snapshot)).toBe(0); // no snapshots on this filesystem (the fallback): the disks were read while it was off
    const lineSeconds = Number(hh) * 3600 + Number(mm) * 60 + Number(ss);
    expect(lineSeconds).toBe(Math.round(off / 1000));

    // the version's own log has the line too
    const versionLog = readFileSync(join(lab.storeDir, 'guests', '101', '1', 'backup.log'), 'utf8');
    expect(versionLog).toContain(`INFO: guest 101 was off for ${hh}:${mm}:${ss} (shutdown ${shutdown} s, snapshot ${snapshot} s, start ${start} s)`);

    // the catalog: list --json has the version's downtimeMs, the same as the task result
    const listed = (await versions(lab, '101')) as Array<{ version: number; downtimeMs?: number | null }>;
    expect(listed.find((v) => v.version === 1)?.downtimeMs).toBe(off);

    // the mail's guest table: the same downtime as the log line
    expect(sink.got.length - before).toBe(1);
    const text = part(sink.got[before]!.raw, 'text/plain');
    expect(text).toMatch(/^VMID\s+Name\s+Status\s+Time\s+Size\s+Rate\s+Downtime$/m);
    const row = /^101\s+web01\s+ok\s+.*\s(\d\d:\d\d:\d\d)$/m.exec(text);
    expect(row?.[1], text).toBe(`${hh}:${mm}:${ss}`);
    expect(part(sink.got[before]!.raw, 'text/html')).toContain(`<td>${hh}:${mm}:${ss}</td></tr>`);
  });

  it('a guest that was not running: no downtime line, none in the task result, `-` in the mail', async () => {
    await addTinyGuest(lab, '102', 'idle02');
    expect((await cv(lab, ['job', 'add', 'dt2', '--store', lab.storeDir, '--vmid', '102', '--mailto', 'admin@example.com'])).code).toBe(0);
    const before = sink.got.length;
    const run = await cv(lab, ['job', 'run', 'dt2']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const { lines, guests } = taskOf(taskIdOf(run.stdout));
    expect(lines.filter((l) => l.message.includes('was off for'))).toEqual([]);
    expect(guests).toHaveLength(1);
    expect(guests[0]).not.toHaveProperty('downtimeMs');
    expect(part(sink.got[before]!.raw, 'text/plain')).toMatch(/^102\s+idle02\s+ok\s+.*\s-$/m);
  });
});
