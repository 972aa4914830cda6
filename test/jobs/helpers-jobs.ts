/**
 * A lab for job tests that drive the built CLI: a temp dir with a guests dir of Proxmox `<vmid>.conf`
 * files, a `local` storage whose `images/<vmid>/vm-<vmid>-disk-0.raw` is the guest's disk, a
 * datastore path, a state dir and a config file (`--config`). With `qemu`, the guests are the tiny
 * real Linux guest (test/helpers/tiny-guest.ts): the qemu dir holds each guest's QMP socket, serial
 * log and pidfile, and `<vmid>.raw` is a symlink to the disk in the storage; one start command
 * starts the guests listed in `ignoreAcpi` with the script that ignores the power button.
 */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { QemuDriver } from '../../src/guests/hypervisor/qemu.js';
import type { MailConfig } from '../../src/jobs/mail.js';
import { cli, type CliResult } from '../helpers/fixtures.js';
import { ensureTinyGuest, guestFiles, killGuest, makeGuestDisk, startScript, waitForSerial } from '../helpers/tiny-guest.js';

export const READY = 'coldvault-tiny-guest: waiting for the power button';
export const IGNORING = 'coldvault-tiny-guest: ignoring the power button';
export const NODE = 'testnode';

export interface JobLab {
  root: string;
  guestsDir: string;
  storageDir: string;
  storeDir: string;
  stateDir: string;
  /** QMP sockets, serial logs, pidfiles and disk symlinks of the tiny guests */
  qemuDir: string;
  configPath: string;
  /** a QemuDriver on the same sockets and start command as the CLI's (undefined without qemu) */
  driver?: QemuDriver;
  startCommand?: string;
  vmids: Set<string>;
  cleanup(): Promise<void>;
}

export interface JobLabOptions {
  /** tiny QEMU guests (else hypervisor.driver 'none') */
  qemu?: boolean;
  /** guests that ignore the ACPI power button */
  ignoreAcpi?: string[];
  mail?: MailConfig;
}

export async function makeJobLab(prefix: string, opts: JobLabOptions = {}): Promise<JobLab> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const lab: JobLab = {
    root,
    guestsDir: join(root, 'guests'),
    storageDir: join(root, 'vz'),
    storeDir: join(root, 'store'),
    stateDir: join(root, 'state'),
    qemuDir: join(root, 'q'),
    configPath: join(root, 'coldvault.json'),
    vmids: new Set(),
    cleanup: async () => {
      for (const vmid of lab.vmids) await killGuest(lab.qemuDir, vmid);
      rmSync(root, { recursive: true, force: true });
    },
  };
  for (const d of [lab.guestsDir, join(lab.storageDir, 'images'), lab.stateDir, lab.qemuDir]) mkdirSync(d, { recursive: true });
  let hypervisor: Record<string, unknown> = { driver: 'none' };
  if (opts.qemu) {
    const guest = await ensureTinyGuest();
    const normal = await startScript({ dir: lab.qemuDir, guest });
    const stubborn = await startScript({ dir: lab.qemuDir, guest, ignoreAcpi: true, name: 'start-stubborn.sh' });
    const wrapper = join(lab.qemuDir, 'start.sh');
    const ignoring = opts.ignoreAcpi ?? [];
    writeFileSync(
      wrapper,
      `#!/bin/sh\ncase "$1" in\n${ignoring.length ? `  ${ignoring.join('|')}) exec '${stubborn.script}' "$1" ;;\n` : ''}  *) exec '${normal.script}' "$1" ;;\nesac\n`,
      { mode: 0o755 },
    );
    lab.startCommand = `${wrapper} {vmid}`;
    const qmpSocket = join(lab.qemuDir, '{vmid}.qmp');
    hypervisor = { driver: 'qemu', qmpSocket, startCommand: lab.startCommand };
    lab.driver = new QemuDriver({ qmpSocket, startCommand: lab.startCommand });
  }
  const config = {
    node: NODE,
    stateDir: lab.stateDir,
    guestsDir: lab.guestsDir,
    storages: { local: lab.storageDir },
    hypervisor,
    ...(opts.mail ? { mail: opts.mail } : {}),
  };
  writeFileSync(lab.configPath, JSON.stringify(config, null, 2));
  return lab;
}

export function diskPath(lab: JobLab, vmid: string): string {
  return join(lab.storageDir, 'images', vmid, `vm-${vmid}-disk-0.raw`);
}

/** Writes `<vmid>.conf` (Proxmox format) whose scsi0 is local:<vmid>/vm-<vmid>-disk-0.raw. */
export function writeGuestConf(lab: JobLab, vmid: string, name: string): void {
  const lines = [
    'boot: order=scsi0',
    'cores: 1',
    'memory: 256',
    `name: ${name}`,
    'net0: virtio=A2:C0:43:77:08:A0,bridge=vmbr0',
    'ostype: l26',
    `scsi0: local:${vmid}/vm-${vmid}-disk-0.raw,size=16M`,
    'scsihw: virtio-scsi-pci',
    'smbios1: uuid=21a7e7bc-3cd2-4232-a009-a41f4ee992ae',
  ];
  writeFileSync(join(lab.guestsDir, `${vmid}.conf`), `${lines.join('\n')}\n`);
}

/** A tiny-guest disk (empty ext4) in the storage, linked where the start script expects it, and its config. */
export async function addTinyGuest(lab: JobLab, vmid: string, name: string): Promise<string> {
  lab.vmids.add(vmid);
  const disk = diskPath(lab, vmid);
  mkdirSync(join(lab.storageDir, 'images', vmid), { recursive: true });
  await makeGuestDisk(disk);
  rmSync(guestFiles(lab.qemuDir, vmid).disk, { force: true });
  symlinkSync(disk, guestFiles(lab.qemuDir, vmid).disk);
  writeGuestConf(lab, vmid, name);
  return disk;
}

/** Boots a guest with the lab's start command (not through coldvault) and waits until it is ready. */
export async function bootGuest(lab: JobLab, vmid: string, ignoresAcpi = false): Promise<void> {
  if (!lab.driver) throw new Error('no qemu in this lab');
  lab.vmids.add(vmid);
  await lab.driver.start(vmid);
  await waitForSerial(lab.qemuDir, vmid, ignoresAcpi ? IGNORING : READY, 60_000);
}

/** Waits for the guest (started by someone else) to boot `boot N` and be ready for the power button. */
export async function waitBooted(lab: JobLab, vmid: string, n: number, ignoresAcpi = false): Promise<void> {
  await waitForSerial(lab.qemuDir, vmid, `coldvault-tiny-guest: boot ${n}`, 60_000);
  await waitForSerial(lab.qemuDir, vmid, ignoresAcpi ? IGNORING : READY, 60_000);
}

/** The CLI with the lab's config. */
export function cv(lab: JobLab, args: string[]): Promise<CliResult> {
  return cli([...args, '--config', lab.configPath]);
}

/** The task id a `job run` prints first (`task <id>`). */
export function taskIdOf(stdout: string): string {
  const id = /^task (\S+)$/m.exec(stdout)?.[1];
  if (!id) throw new Error(`no task id in:\n${stdout}`);
  return id;
}

/** Index of the first line containing `text` (-1 if none): to check the order of log lines. */
export function lineIndex(log: string, text: string): number {
  return log.split('\n').findIndex((l) => l.includes(text));
}

/** A vzdump-style hook script that appends `ARGS|DUMPDIR|VMTYPE|HOSTNAME|TARGET|LOGFILE` per call; `extra` runs after. */
export function writeHook(lab: JobLab, name: string, extra = ''): { script: string; log: string } {
  const script = join(lab.root, name);
  const log = join(lab.root, `${name}.calls`);
  writeFileSync(
    script,
    `#!/bin/sh\n# no PATH here (vzdump's environment): builtins and absolute paths only\n` +
      `echo "$*|DUMPDIR=$DUMPDIR|VMTYPE=$VMTYPE|HOSTNAME=$HOSTNAME|TARGET=$TARGET|LOGFILE=$LOGFILE" >> '${log}'\n${extra}`,
    { mode: 0o755 },
  );
  return { script, log };
}

export interface HookCall {
  args: string;
  env: Record<string, string>;
}

export function hookCalls(log: string): HookCall[] {
  let text = '';
  try {
    text = readFileSync(log, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [args = '', ...vars] = line.split('|');
      return { args, env: Object.fromEntries(vars.map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)])) };
    });
}

/** `coldvault list <vmid> --json` of the lab's store. */
export async function versions(lab: JobLab, vmid: string): Promise<Array<{ id: string; version: number; name: string }>> {
  const r = await cv(lab, ['list', vmid, '--store', lab.storeDir, '--json']);
  if (r.code !== 0) throw new Error(`coldvault list failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Array<{ id: string; version: number; name: string }>;
}

/** ext4 superblock features of an image (e.g. needs_recovery after an unclean power-off). */
export async function ext4Features(image: string): Promise<string> {
  const { stdout } = await execa('dumpe2fs', ['-h', image], { reject: false });
  return /^Filesystem features:\s*(.*)$/m.exec(stdout)?.[1] ?? '';
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` is true; false after timeoutMs. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}

export { part, startSmtpSink, subjectOf, type Received } from '../helpers/smtp.js';
