/**
 * One boot test: the version's disks exported over NBD (read-only, chunks verified) on a socket in a
 * private scratch folder, a QEMU built from the version's archived config (memory, cores, cpu, bios,
 * disks from the export with snapshot=on so the guest's writes go to QEMU's throwaway overlay,
 * `args:` as Proxmox passes them, no network, `-no-shutdown` so a guest that powers off keeps its
 * screen), then the signal waited for until the timeout, a QMP `screendump` of the screen kept as PNG,
 * and everything torn down whatever happened: QEMU killed, export closed, scratch folder removed, slot
 * freed. An OVMF guest gets its archived efidisk0 as its EFI variables (snapshot=on too), or OVMF's
 * template when it has none. The verdict goes to the catalog when one is given (like a verify result, a catalog rebuild
 * resets it). Screenshots: `<stateDir>/boot-tests/<datastore id>/<vmid>-<version>.png`, mode 0600.
 */
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BootTestRecord, Catalog } from '../../catalog/index.js';
import { ColdvaultError, describeError, type TaskLog } from '../../core/index.js';
import type { VersionKey } from '../../format/index.js';
import { parseGuestConfig, qemuCommand, type QemuDrive } from '../../guests/index.js';
import type { QmpClient } from '../../guests/hypervisor/index.js';
import { startExport, type RunningExport } from '../export/index.js';
import { openVersion } from '../version-keys.js';
import { sourceOf, type SourceRef } from '../version-source.js';
import type { WorkerPool } from '../worker-pool.js';
import { GuestProcess } from './qemu-process.js';
import { makeScratch } from './scratch.js';
import { describeSignal, probeOf, serialTail, type BootSignal, type ProbeContext } from './signals.js';
import { DEFAULT_MAX_BOOT_TESTS, takeBootSlot } from './slots.js';

export type BootTestRequest = SourceRef & {
  pool: WorkerPool;
  guestId: string;
  version: number;
  key?: VersionKey;
  signal: BootSignal;
  timeoutSeconds: number;
  /** QEMU's accelerators: 'kvm:tcg' (default) or 'tcg' */
  accel?: string;
  stateDir: string;
  /** names the folder of the screenshots (a datastore's id, or `remote-<node>`) */
  storeName: string;
  maxConcurrent?: number;
  /** where the verdict is recorded (none: a remote store) */
  catalog?: Catalog;
  log: TaskLog;
  abort?: AbortSignal;
};

export interface BootTestOutcome extends BootTestRecord {
  /** the PNG of the guest's screen at the end, or null when none could be taken */
  screenshot: string | null;
}

interface Running {
  scratch: string;
  export: RunningExport;
  guest: GuestProcess;
  qmp: QmpClient;
  poweredOff: boolean;
}

export function screenshotPath(stateDir: string, storeName: string, guestId: string, version: number): string {
  return join(stateDir, 'boot-tests', storeName, `${guestId}-${version}.png`);
}

export async function runBootTest(req: BootTestRequest): Promise<BootTestOutcome> {
  const what = `guest ${req.guestId} version ${req.version}`;
  const slot = await takeBootSlot(req.stateDir, req.maxConcurrent ?? DEFAULT_MAX_BOOT_TESTS, `boot test of ${what}`, req.log, req.abort);
  const parts: Partial<Running> = {};
  try {
    parts.scratch = await makeScratch();
    const running = await startGuest(req, parts);
    const verdict = await waitForSignal(req, running);
    const screenshot = await takeScreenshot(req, running);
    const outcome = { ...verdict, screenshot };
    record(req, outcome);
    return outcome;
  } finally {
    await tearDown(parts, req.log);
    await slot.release();
  }
}

async function startGuest(req: BootTestRequest, parts: Partial<Running>): Promise<Running> {
  const scratch = parts.scratch as string;
  const config = await archivedConfig(req);
  parts.export = await startExport({ ...req, at: { socket: join(scratch, 'nbd.sock') }, log: req.log });
  const drives = new Map<string, QemuDrive>(
    parts.export.exports
      .filter((e) => !/^(efidisk|tpmstate)\d+$/.test(e.name)) // firmware state, not a disk the guest boots from
      .map((e) => [e.name, { file: `nbd:unix:${parts.export?.address}:exportname=${e.name}`, format: config.formats.get(e.name) ?? 'raw', snapshot: true }]),
  );
  const efidisk = parts.export.exports.find((e) => e.name === 'efidisk0');
  const efiVars = efidisk && { file: `nbd:unix:${parts.export.address}:exportname=efidisk0`, format: config.formats.get('efidisk0') ?? 'raw', snapshot: true };
  const qmpSocket = join(scratch, 'qmp.sock');
  const args = qemuCommand({
    ...{ vmid: req.guestId, config: config.parsed, drives, qmpSocket, network: 'none', accel: req.accel, scratchDir: scratch },
    ...{ serialLog: join(scratch, 'serial.log'), guestAgentSocket: join(scratch, 'qga.sock'), noShutdown: true, efiVars },
  });
  parts.guest = GuestProcess.start(args);
  parts.qmp = await parts.guest.connectQmp(qmpSocket);
  const running = parts as Running;
  running.poweredOff = false;
  running.qmp.onEvent((e) => {
    if (e.event === 'SHUTDOWN') running.poweredOff = true;
  });
  req.log.info(
    `boot test of guest ${req.guestId} version ${req.version}: QEMU pid ${parts.guest.pid}, no network, disks ${[...drives.keys()].join(', ')} (snapshot=on)${efiVars ? ', EFI variables from efidisk0 (snapshot=on)' : ''}`,
  );
  return running;
}

/** The version's archived Proxmox config and its disks' formats (an encrypted version opened with its key). */
async function archivedConfig(req: BootTestRequest): Promise<{ parsed: ReturnType<typeof parseGuestConfig>; formats: Map<string, string> }> {
  const source = sourceOf(req);
  const opened = openVersion(req.pool, await source.readManifest(req.guestId, req.version), req.key, req);
  try {
    const m = opened.manifest;
    const parsed = parseGuestConfig(m.config, `the archived config of guest ${req.guestId} version ${req.version}`);
    return {
      parsed,
      formats: new Map(m.disks.map((d) => [d.key, d.format])),
    };
  } finally {
    opened.release();
  }
}

async function waitForSignal(req: BootTestRequest, running: Running): Promise<BootTestRecord> {
  const { probe, everyMs } = probeOf(req.signal);
  const started = Date.now();
  const ctx: ProbeContext = {
    serialLog: join(running.scratch, 'serial.log'),
    agentSocket: join(running.scratch, 'qga.sock'),
    guestId: req.guestId,
    version: req.version,
    deadline: started + req.timeoutSeconds * 1000,
    abort: req.abort,
  };
  req.log.info(`waiting up to ${req.timeoutSeconds} s for ${describeSignal(req.signal)}`);
  const verdict = (ok: boolean, detail: string): BootTestRecord => ({
    ok,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    signal: describeSignal(req.signal),
    at: new Date().toISOString(),
    detail,
  });
  for (;;) {
    const hit = await probe(ctx);
    const unread = running.export.troubles.length;
    if (hit && unread > 0) return verdict(false, `the guest came up (${hit}), but ${unread} chunk(s) of the version could not be read: run coldvault verify`);
    if (hit) return verdict(true, hit);
    const failure = await whyStopped(req, running, ctx, started);
    if (failure) return verdict(false, failure);
    await new Promise((r) => setTimeout(r, Math.max(10, Math.min(everyMs, ctx.deadline - Date.now()))));
  }
}

/** Why waiting is over without the signal (undefined: keep waiting). */
async function whyStopped(req: BootTestRequest, running: Running, ctx: ProbeContext, started: number): Promise<string | undefined> {
  if (req.abort?.aborted) throw new ColdvaultError('ABORTED', `the boot test of guest ${req.guestId} version ${req.version} was interrupted`);
  const secs = Math.round((Date.now() - started) / 1000);
  let why: string | undefined;
  if (running.guest.hasExited) why = `${running.guest.describeExit()} after ${secs} s, before the guest gave the signal`;
  else if (running.poweredOff) why = `the guest powered off after ${secs} s without giving the signal (${describeSignal(req.signal)})`;
  else if (Date.now() >= ctx.deadline) why = `timeout: no ${describeSignal(req.signal)} within ${req.timeoutSeconds} s`;
  if (!why) return undefined;
  const tail = await serialTail(ctx.serialLog);
  const troubles = running.export.troubles.length;
  return [
    why,
    tail ? `the serial console's last lines: ${tail}` : 'nothing on the serial console',
    troubles ? `${troubles} chunk(s) of the version could not be read` : '',
  ]
    .filter(Boolean)
    .join('; ');
}

async function takeScreenshot(req: BootTestRequest, running: Running): Promise<string | null> {
  if (running.guest.hasExited) return null;
  const file = screenshotPath(req.stateDir, req.storeName, req.guestId, req.version);
  const partial = `${file}.partial-${process.pid}`;
  try {
    await mkdir(join(file, '..'), { recursive: true, mode: 0o700 });
    await running.qmp.execute('screendump', { filename: partial, format: 'png' });
    await chmod(partial, 0o600);
    await rename(partial, file);
    req.log.info(`screenshot of the guest's screen: ${file}`);
    return file;
  } catch (err) {
    await rm(partial, { force: true });
    req.log.warn(`no screenshot of the guest's screen: ${describeError(err)}`);
    return null;
  }
}

function record(req: BootTestRequest, outcome: BootTestOutcome): void {
  const { screenshot: _, ...result } = outcome;
  if (outcome.ok) req.log.info(`boot test passed in ${outcome.seconds} s: ${outcome.detail}`);
  else req.log.error(`boot test failed: ${outcome.detail}`);
  try {
    req.catalog?.markBootTest(req.guestId, req.version, result);
  } catch (err) {
    req.log.warn(`the boot test result was not recorded in the catalog: ${describeError(err)}`);
  }
}

/** QEMU killed, the export closed, the scratch folder (sockets, serial log) removed; each step whatever the others did. */
async function tearDown(parts: Partial<Running>, log: TaskLog): Promise<void> {
  const steps: Array<[string, (() => Promise<void>) | undefined]> = [
    ['closing QMP', parts.qmp && (() => (parts.qmp as QmpClient).close())],
    ['stopping QEMU', parts.guest && (() => (parts.guest as GuestProcess).kill())],
    ['closing the export', parts.export && (() => (parts.export as RunningExport).close())],
    ['removing the scratch folder', parts.scratch ? () => rm(parts.scratch as string, { recursive: true, force: true }) : undefined],
  ];
  for (const [doing, step] of steps) {
    if (!step) continue;
    try {
      await step();
    } catch (err) {
      log.warn(`boot test clean-up: ${doing} failed: ${describeError(err)}`);
    }
  }
}
