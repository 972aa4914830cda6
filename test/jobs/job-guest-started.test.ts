/**
 * A guest started while its disks are being read is never published, with every driver. The guest is
 * started by hand in the window between coldvault's shutdown and the end of the read, on purpose and
 * deterministically: the job runs in-process (the engine from dist/, as the CLI runs it) and the
 * start happens, synchronously, in the job's progress callback (the one the CLI's progress bar uses)
 * at the first progress event of the read. No hook phase lies in that window.
 * - qemu driver, the tiny real Linux guest under QEMU (TCG): running, shut down over ACPI by the job,
 *   started by hand (its own start script) while its disk is read. The job fails with GUEST_STARTED
 *   (task log and mail), `coldvault list` shows no new version, `verify` is clean, no staging folder
 *   is left, and the guest runs exactly once: coldvault neither stops it again nor runs its start
 *   command (one QEMU process, the start command never called).
 * - libvirt driver, the REAL virsh on libvirt's test driver (test:///node.xml, no daemon, no guest OS):
 *   a domain that is off is backed up; a second run, during which the domain is started (its node XML
 *   says running from then on: each virsh process reads it afresh), fails the same way.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { HypervisorDriver } from '../../src/core/hypervisor.js';
import { LibvirtDriver, QemuDriver } from '../../dist/guests/hypervisor/index.js';
import { openStateDb, runJob, StopJournal, TaskStore, validateJob, type JobResult, type MailConfig } from '../../dist/jobs/index.js';
import { guestFiles, killGuest, makeGuestDisk, readBootCount } from '../helpers/tiny-guest.js';
import {
  addTinyGuest,
  bootGuest,
  cv,
  diskPath,
  hookCalls,
  lineIndex,
  makeJobLab,
  NODE,
  part,
  startSmtpSink,
  subjectOf,
  versions,
  waitBooted,
  writeGuestConf,
  writeHook,
  type JobLab,
} from './helpers-jobs.js';

const STARTED = (vmid: string): string => `guest ${vmid} was started while its disks were being read (status: running); this version is discarded`;

interface InProcessRun {
  result: JobResult;
  log: string;
  startedByHand: boolean;
}

/**
 * Runs `job` in this process with `driver`; `byHand` runs (synchronously) at the first progress
 * event of the read, if given.
 */
async function runInProcess(
  lab: JobLab,
  job: Record<string, unknown>,
  driver: HypervisorDriver,
  byHand?: () => void,
  mail?: MailConfig,
): Promise<InProcessRun> {
  const db = openStateDb(lab.stateDir);
  try {
    const tasks = new TaskStore(db, lab.stateDir);
    let startedByHand = false;
    const result = await runJob(validateJob(job), {
      node: NODE,
      stateDir: lab.stateDir,
      guestsDir: lab.guestsDir,
      storages: { local: lab.storageDir },
      zstdLevel: 1,
      tasks,
      journal: new StopJournal(db),
      driver,
      mail,
      onProgress: (p) => {
        if (!byHand || startedByHand || p.phase !== 'backup') return;
        startedByHand = true;
        byHand();
      },
    });
    const log = tasks
      .lines(result.taskId)
      .map((l) => `${l.level}: ${l.message}`)
      .join('\n');
    expect(new StopJournal(db).entries()).toEqual([]);
    return { result, log, startedByHand };
  } finally {
    db.close();
  }
}

/** PIDs of QEMU processes serving this guest's QMP socket. */
function qemuProcesses(lab: JobLab, vmid: string): number[] {
  const qmp = guestFiles(lab.qemuDir, vmid).qmp;
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((pid) => {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        return cmd.includes('qemu-system') && cmd.includes(qmp) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    })
    .map(Number);
}

function stagingLeft(lab: JobLab, vmid: string): string[] {
  const dir = join(lab.storeDir, 'guests', vmid);
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('.staging-')) : [];
}

describe('a guest started while its disks are read: the tiny real QEMU guest', () => {
  let lab: JobLab;
  let sink: Awaited<ReturnType<typeof startSmtpSink>>;

  beforeAll(async () => {
    sink = await startSmtpSink();
    lab = await makeJobLab('cv-jgs-', { qemu: true });
  });
  afterEach(async () => {
    for (const vmid of lab.vmids) await killGuest(lab.qemuDir, vmid);
  });
  afterAll(async () => {
    await lab?.cleanup();
    await sink?.close();
  });

  it('fails with GUEST_STARTED, publishes nothing, and leaves the guest running exactly once', async () => {
    const disk = await addTinyGuest(lab, '101', 'web01');
    await bootGuest(lab, '101');
    expect(await readBootCount(disk)).toBe(1);
    // coldvault's start command counts its calls; the hand uses the guest's start script directly
    const starts = join(lab.root, 'starts.log');
    const counting = join(lab.root, 'counting-start.sh');
    writeFileSync(counting, `#!/bin/sh\necho "$1" >> '${starts}'\nexec ${lab.startCommand!.replace(' {vmid}', '')} "$1"\n`, { mode: 0o755 });
    const driver = new QemuDriver({ qmpSocket: join(lab.qemuDir, '{vmid}.qmp'), startCommand: `${counting} {vmid}` });
    const hook = writeHook(lab, 'hook.sh');
    const mail: MailConfig = {
      transport: 'smtp',
      host: '127.0.0.1',
      port: sink.port,
      secure: false,
      tlsRejectUnauthorized: false,
      from: 'backup@pve.example.com',
    };

    const run = await runInProcess(
      lab,
      { id: 'j1', store: lab.storeDir, vmid: ['101'], hook: hook.script, mailto: ['admin@example.com'] },
      driver,
      () => execFileSync(lab.startCommand!.replace(' {vmid}', ''), ['101']),
      mail,
    );

    expect(run.startedByHand).toBe(true);
    expect(run.result.ok).toBe(false);
    expect(run.result.guests).toMatchObject([{ vmid: '101', status: 'failed', error: STARTED('101') }]);
    expect(run.log).toContain('INFO: stopping virtual guest');
    expect(run.log).toContain(`ERROR: Backup of VM 101 failed - ${STARTED('101')}`);
    expect(run.log).toContain('WARN: guest 101 was started by someone else while coldvault held it stopped; it is left as it is and not started again');
    expect(run.log).toContain('Backup job finished with errors');
    expect(lineIndex(run.log, 'restarting vm')).toBe(-1);
    expect(hookCalls(hook.log).map((c) => c.args)).toEqual([
      'job-init',
      'job-start',
      'backup-start stop 101',
      'pre-stop stop 101',
      'backup-abort stop 101',
      'log-end stop 101',
      'job-end',
    ]);
    const sent = sink.got.at(-1);
    expect(sent, 'a report mail arrived').toBeDefined();
    expect(subjectOf(sent!.raw)).toMatch(/job j1\): backup failed/);
    expect(part(sent!.raw, 'text/plain')).toContain('was started while its disks were being read');

    // nothing published, nothing left half-written, the store is sound
    expect(await versions(lab, '101')).toEqual([]);
    expect(stagingLeft(lab, '101')).toEqual([]);
    const verify = await cv(lab, ['verify', '--store', lab.storeDir]);
    expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);

    // the guest runs, once: booted by the hand (boot 2), never started or stopped by coldvault again
    expect(await driver.status('101')).toBe('running');
    await waitBooted(lab, '101', 2);
    expect(qemuProcesses(lab, '101')).toHaveLength(1);
    expect(existsSync(starts) ? readFileSync(starts, 'utf8') : '').toBe('');
    expect(await readBootCount(disk)).toBe(2);
  });
});

const NODE_XML = (state: 1 | 5): string => `<node>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>vm-201</name>
    <memory>1048576</memory>
    <os><type>hvm</type></os>
    <test:runstate>${state}</test:runstate>
  </domain>
</node>
`;

describe('a guest started while its disks are read: libvirt (real virsh, test driver)', () => {
  let lab: JobLab;

  beforeAll(async () => {
    lab = await makeJobLab('cv-jgsl-');
  });
  afterAll(async () => {
    await lab?.cleanup();
  });

  it('a domain that stays off is backed up; one started during the read fails with GUEST_STARTED and is not published', async () => {
    const nodeXml = join(lab.root, 'node.xml');
    writeFileSync(nodeXml, NODE_XML(5)); // shut off
    mkdirSync(join(lab.storageDir, 'images', '201'), { recursive: true });
    await makeGuestDisk(diskPath(lab, '201'), 8);
    writeGuestConf(lab, '201', 'lv201');
    const driver = (): LibvirtDriver => new LibvirtDriver({ uri: `test://${nodeXml}`, domain: 'vm-{vmid}', session: true, shutdownMode: null, pollMs: 50 });
    const job = { id: 'lv', store: lab.storeDir, vmid: ['201'] };

    const first = await runInProcess(lab, job, driver());
    expect(first.result.ok, first.log).toBe(true);
    expect(first.log).toContain('status = stopped');
    expect(first.log).toContain('status after reading the disks = stopped');
    expect((await versions(lab, '201')).map((v) => v.version)).toEqual([1]);

    const second = await runInProcess(lab, job, driver(), () => writeFileSync(nodeXml, NODE_XML(1)));
    expect(second.startedByHand).toBe(true);
    expect(second.result.ok).toBe(false);
    expect(second.result.guests).toMatchObject([{ vmid: '201', status: 'failed', error: STARTED('201') }]);
    expect(second.log).toContain(`ERROR: Backup of VM 201 failed - ${STARTED('201')}`);
    expect(second.log).not.toContain('stopping virtual guest');
    expect(second.log).not.toContain('restarting vm');
    expect((await versions(lab, '201')).map((v) => v.version)).toEqual([1]);
    expect(stagingLeft(lab, '201')).toEqual([]);
    const verify = await cv(lab, ['verify', '--store', lab.storeDir]);
    expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);
    expect(await driver().status('201')).toBe('running');
  });
});
