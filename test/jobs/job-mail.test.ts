/**
 * The job status mail end to end: `coldvault job run` (built CLI, hypervisor driver 'none', plain
 * generated disk images) sends its report to a REAL SMTP server on loopback (smtp-server, port 0,
 * STARTTLS with its self-signed certificate, which the config allows); the message is received raw
 * and decoded here.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeImage } from '../helpers/fixtures.js';
import { cv, diskPath, makeJobLab, NODE, part, startSmtpSink, subjectOf, taskIdOf, writeGuestConf, type JobLab, type Received } from './helpers-jobs.js';

let lab: JobLab;
let sink: Awaited<ReturnType<typeof startSmtpSink>>;
let got: Received[] = [];

beforeAll(async () => {
  sink = await startSmtpSink();
  got = sink.got;
  lab = await makeJobLab('cv-jm-', {
    mail: { transport: 'smtp', host: '127.0.0.1', port: sink.port, secure: false, tlsRejectUnauthorized: false, from: 'backup@pve.example.com' },
  });
  // 101: a plain 12 MiB disk image; 102: its disk file is missing
  mkdirSync(join(lab.storageDir, 'images', '101'), { recursive: true });
  writeImage(diskPath(lab, '101'), ['random', 'zero', 'text'], 7);
  writeGuestConf(lab, '101', 'web01');
  writeGuestConf(lab, '102', 'gone02');
});

afterAll(async () => {
  await sink?.close();
  await lab?.cleanup();
});

describe('job status mail via a real SMTP server', () => {
  it('a successful job mails the report: subject with node, job and result; guest table and log', async () => {
    const add = await cv(lab, ['job', 'add', 'mailok', '--store', lab.storeDir, '--vmid', '101', '--mailto', 'admin@example.com']);
    expect(add.code, add.stderr).toBe(0);
    const before = got.length;
    const run = await cv(lab, ['job', 'run', 'mailok']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('sent the report to admin@example.com');
    expect(got.length - before).toBe(1);

    const msg = got[before]!;
    expect(msg.to).toEqual(['admin@example.com']);
    expect(msg.from).toBe('backup@pve.example.com');
    expect(msg.secure).toBe(true); // STARTTLS was offered and used
    expect(subjectOf(msg.raw)).toBe(`coldvault backup status (${NODE}, job mailok): backup successful`);
    const text = part(msg.raw, 'text/plain');
    expect(text).toContain("coldvault backup job 'mailok' on testnode: backup successful (1 guest(s): 1 ok, 0 failed)");
    expect(text).toMatch(/^VMID\s+Name\s+Status\s+Time\s+Size\s+Rate\s+Downtime$/m);
    // driver 'none': the guest was not stopped by coldvault, so no downtime
    expect(text).toMatch(/^101\s+web01\s+ok\s+\d\d:\d\d:\d\d\s+\S+ [KMG]?i?B\s+\d+\.\d MiB\/s\s+-$/m);
    expect(text).toContain('Detailed backup log:');
    expect(text).toMatch(/^INFO: Finished Backup of VM 101 \(\d\d:\d\d:\d\d\)$/m);
    expect(text).toMatch(/^INFO: Backup job finished successfully$/m);
    // the log in the mail is the task's log
    const taskLog = await cv(lab, ['task', 'log', taskIdOf(run.stdout)]);
    expect(taskLog.stdout).toContain('Finished Backup of VM 101');
    const html = part(msg.raw, 'text/html');
    expect(html).toMatch(/<tr><td>101<\/td><td>web01<\/td><td>ok<\/td>/);
    expect(html).toContain('Finished Backup of VM 101');
  });

  it('a failing job with --mail-notification failure mails "backup failed" with the error', async () => {
    const add = await cv(lab, [
      'job',
      'add',
      'mailfail',
      '--store',
      lab.storeDir,
      '--vmid',
      '101,102',
      '--mailto',
      'admin@example.com',
      '--mail-notification',
      'failure',
    ]);
    expect(add.code, add.stderr).toBe(0);
    const before = got.length;
    const run = await cv(lab, ['job', 'run', 'mailfail']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(1);
    expect(run.stdout).toMatch(/ERROR: Backup of VM 102 failed - .*does not exist/);
    expect(got.length - before).toBe(1);

    const msg = got[before]!;
    expect(subjectOf(msg.raw)).toBe(`coldvault backup status (${NODE}, job mailfail): backup failed`);
    const text = part(msg.raw, 'text/plain');
    expect(text).toContain('backup failed (2 guest(s): 1 ok, 1 failed)');
    expect(text).toMatch(/^101\s+web01\s+ok\s/m);
    expect(text).toMatch(/^102\s+gone02\s+failed\s/m);
    const missing = diskPath(lab, '102');
    expect(text).toContain(`Errors:\n102: disk 'scsi0' of guest 102: image '${missing}' does not exist`);
    expect(text).toContain(`ERROR: Backup of VM 102 failed - disk 'scsi0' of guest 102: image '${missing}' does not exist`);
    expect(text).toMatch(/^INFO: Backup job finished with errors$/m);
  });

  it('a successful job with --mail-notification failure sends nothing', async () => {
    const add = await cv(lab, [
      'job',
      'add',
      'quiet',
      '--store',
      lab.storeDir,
      '--vmid',
      '101',
      '--mailto',
      'admin@example.com',
      '--mail-notification',
      'failure',
    ]);
    expect(add.code, add.stderr).toBe(0);
    const before = got.length;
    const run = await cv(lab, ['job', 'run', 'quiet']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).not.toContain('sent the report');
    await new Promise((r) => setTimeout(r, 500));
    expect(got.length).toBe(before);
  });
});
