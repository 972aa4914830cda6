/**
 * Restore-on-the-fly (`restore --live`, qemu driver): the restored guest starts within seconds, on
 * its backup, and its disks are copied underneath while it runs.
 * 1. Checks as a plain restore makes them (restore-plan.ts): the lock on the new ID, a taken ID, the
 *    volumes, the space; also no pending live restore to that ID and no QEMU on its QMP socket.
 * 2. The version's disks are exported over NBD on a socket in a private scratch folder (export/),
 *    each final volume is created empty (exclusively) and an overlay made beside it (live-volumes.ts);
 *    the journal is written (live-journal.ts).
 * 3. QEMU is started, daemonized, from the restored config (guests/qemu-command.ts: the config's
 *    NICs, `args:`, memory...), each disk on its overlay, its QMP socket where the qemu driver looks
 *    for it: from then on it is a guest like any other (jobs stop and start it by that socket).
 * 4. live-complete.ts copies, pivots and writes the config. The command returns when the guest runs
 *    on its final volumes.
 * Failures before the pivot (not a crash): the guest is stopped (`quit`) and everything the restore
 * made is removed: the guest's writes since it started are lost, the backup is untouched. A crash of
 * this process leaves QEMU running; its reads of data not yet copied wait (NBD reconnect) for
 * `coldvault restore --resume-live M` (live-resume.ts).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { ColdvaultError, describeError, formatDuration, type TaskLog } from '../../core/index.js';
import { configValue, guestConfigPath, parseGuestConfig, qemuCommand, type GuestConfig } from '../../guests/index.js';
import { QEMU_BINARY } from '../boot-test/index.js';
import { startExport, type RunningExport } from '../export/index.js';
import { recoverInterruptedRestore } from '../restore-recovery.js';
import { checkRestoreSpace, planDisks, refuseTakenId, restoredConfig, restoreLocks } from '../restore-plan.js';
import type { RestoreRequest } from '../restore.js';
import { openVersion } from '../version-keys.js';
import { sourceOf, type VersionSource } from '../version-source.js';
import { completeLive } from './live-complete.js';
import { holdVersion, releaseHold } from './live-hold.js';
import { qemuAt, qmpAt, type Qmp } from './mirror.js';
import { type LiveDisk, type LiveJournal, refusePending, removeJournal, resumeCommand, writeJournal } from './live-journal.js';
import { createOverlay, createTarget, overlayPathFor, removeFiles, virtualSize } from './live-volumes.js';

export type LiveRestoreRequest = RestoreRequest & {
  /** where the restored guest's QMP socket goes (the qemu driver's `qmpSocket`, `{vmid}` replaced) */
  qmpSocket: string;
  stateDir: string;
  /** QEMU's accelerators: 'kvm:tcg' (default) or 'tcg' */
  accel?: string;
  /** caps the copy, bytes per second */
  speed?: number;
  abort?: AbortSignal;
  /**
   * what `abort` means once the guest runs: 'undo' (default; the CLI's Ctrl-C) stops the guest and
   * removes what the restore made; 'keep' (a server shutting down) leaves the guest running and the
   * journal for the next start or `--resume-live`, as a crash would
   */
  onAbort?: 'undo' | 'keep';
  /** the datastore as the caller named it, recorded in the journal for `--resume-live` and serve */
  storeName?: string;
};

export interface LiveRestoreResult {
  configPath: string;
  volumes: Map<string, string>;
  /** seconds from the command to the guest running */
  startedAfter: number;
  /** whether the guest still runs (false when it powered off during the copy) */
  running: boolean;
}

interface Started {
  source: VersionSource;
  journal: LiveJournal;
  export: RunningExport;
  qmp?: Qmp;
  /** files this restore created (removed on failure) */
  created: string[];
  /** seconds from the command to the guest running */
  startedAfter?: number;
}

export async function restoreGuestLive(req: LiveRestoreRequest): Promise<LiveRestoreResult> {
  const began = Date.now();
  const source = sourceOf(req);
  if (req.force) throw new ColdvaultError('USAGE', 'restore --live does not go with --force: restore to an unused guest ID');
  req.log.info(
    `live restore of guest ${req.guestId} version ${req.version} as ${req.newId} from ${source.describe}: the guest starts at once, its disks are copied while it runs`,
  );
  const lock = await restoreLocks(req, source).acquire(`restore-${req.newId}`, `live restore to guest ${req.newId}`);
  try {
    const started = await startGuest(req, source, began);
    try {
      const { running } = await completeLive({
        ...req,
        source,
        journal: started.journal,
        qmp: started.qmp ?? null,
        export: started.export,
        stateDir: req.stateDir,
      });
      req.log.info(
        `restore successful: guest ${req.newId} ${running ? 'runs on its final volumes' : 'is stopped; its final volumes are complete'} (${formatDuration((Date.now() - began) / 1000)} after the command)`,
      );
      const volumes = new Map(started.journal.disks.map((d) => [d.key, d.volume]));
      return { configPath: started.journal.configPath, volumes, startedAfter: started.startedAfter ?? 0, running };
    } catch (err) {
      await undoOrKeep(req, started, err);
      throw err;
    }
  } finally {
    await lock.release();
  }
}

async function startGuest(req: LiveRestoreRequest, source: VersionSource, began: number): Promise<Started> {
  const opened = openVersion(req.pool, await source.readManifest(req.guestId, req.version), req.key, req);
  const manifest = opened.manifest;
  opened.release();
  const configPath = guestConfigPath(req.guestsDir, req.newId);
  await refusePending(req.stateDir, req.newId);
  await recoverInterruptedRestore(req.guestsDir, req.newId, req.storages, req.log);
  refuseTakenId(req, configPath);
  await refuseRunningGuest(req.qmpSocket, req.newId);
  refuseUnsupported(parseGuestConfig(manifest.config, `the archived config of guest ${req.guestId} version ${req.version}`), req.guestId);
  const plans = await planDisks(req, source, manifest, configPath);
  await checkRestoreSpace(plans, req.log);
  const scratch = await mkdtemp(join(tmpdir(), `coldvault-live-${req.newId}-`));
  const socket = join(scratch, 'nbd.sock');
  let exp: RunningExport;
  try {
    exp = await startExport({ source, pool: req.pool, guestId: req.guestId, version: req.version, key: req.key, at: { socket }, log: req.log });
  } catch (err) {
    await rm(scratch, { recursive: true, force: true });
    throw err;
  }
  const started: Started = { source, export: exp, created: [], journal: undefined as unknown as LiveJournal };
  try {
    const disks: LiveDisk[] = [];
    for (const plan of plans) {
      const format = manifest.disks.find((d) => d.key === plan.key)?.format === 'qcow2' ? 'qcow2' : 'raw';
      disks.push({
        key: plan.key,
        volume: plan.volume,
        path: plan.path,
        overlay: overlayPathFor(plan.path),
        format,
        virtualSize: await virtualSize(socket, plan.key, format),
      });
    }
    const config = restoredConfig(req, manifest, new Map(disks.map((d) => [d.key, d.volume])));
    const pidFile = `${req.qmpSocket.replace(/\.qmp$/, '')}.pid`;
    started.journal = {
      ...{ newId: req.newId, guestId: req.guestId, version: req.version, source: source.describe, store: req.storeName, speed: req.speed, pid: process.pid },
      ...{ startedAt: new Date().toISOString(), phase: 'starting', scratch, socket, qmpSocket: req.qmpSocket, pidFile, configPath, config, disks },
    };
    await writeJournal(req.stateDir, started.journal);
    await holdVersion(source, started.journal, req.stateDir, req.log);
    for (const disk of disks) {
      await mkdir(dirname(disk.path), { recursive: true });
      await createTarget(disk);
      started.created.push(disk.path);
      await createOverlay(disk, socket);
      started.created.push(disk.overlay);
    }
    await launchQemu(req, started.journal);
    started.qmp = qmpAt(req.qmpSocket);
    await started.qmp.execute('query-status');
    started.journal.phase = 'mirroring';
    await writeJournal(req.stateDir, started.journal);
    const after = (Date.now() - began) / 1000;
    req.log.info(`guest ${req.newId} started ${after.toFixed(1)} s after the command, on overlays over the backup (QMP '${req.qmpSocket}')`);
    started.startedAfter = after;
    return started;
  } catch (err) {
    await undoOrKeep(req, started, err);
    throw err;
  }
}

/** A guest config coldvault's QEMU command cannot run from overlays: OVMF (its EFI vars disk), a TPM state. */
function refuseUnsupported(config: GuestConfig, guestId: string): void {
  if (configValue(config, 'bios') === 'ovmf' || configValue(config, 'efidisk0') || configValue(config, 'tpmstate0')) {
    throw new ColdvaultError(
      'NOT_SUPPORTED',
      `guest ${guestId} boots with OVMF or has a TPM state (efidisk0/tpmstate0): restore --live starts SeaBIOS guests only; restore it without --live`,
    );
  }
}

async function refuseRunningGuest(qmpSocket: string, newId: string): Promise<void> {
  if ((await qemuAt(qmpSocket).status(newId)) === 'stopped') return;
  throw new ColdvaultError('GUEST_ID_TAKEN', `a QEMU answers on '${qmpSocket}': guest ${newId} runs already; choose another --new-id`);
}

async function launchQemu(req: LiveRestoreRequest, journal: LiveJournal): Promise<void> {
  await mkdir(dirname(req.qmpSocket), { recursive: true });
  const config = parseGuestConfig(journal.config, `the restored config of guest ${req.newId}`);
  const drives = new Map(journal.disks.map((d) => [d.key, { file: d.overlay, format: 'qcow2' }]));
  const args = qemuCommand({
    ...{ vmid: req.newId, config, drives, qmpSocket: req.qmpSocket, network: 'bridge', accel: req.accel },
    daemonize: { pidFile: journal.pidFile },
  });
  const r = await execa(QEMU_BINARY, args, { reject: false, stdin: 'ignore', timeout: 60_000 });
  if (r.exitCode !== 0) {
    const why = r.stderr.trim() || r.message;
    throw new ColdvaultError('LIVE_RESTORE_FAILED', `QEMU did not start guest ${req.newId} on the backup: ${why}`);
  }
}

/**
 * After a failure: before the pivot, the guest is stopped and everything made is removed (the backup
 * is untouched); from the pivot on, the final volumes may hold the guest's newer writes, so the guest
 * and the journal stay for `--resume-live`.
 */
async function undoOrKeep(req: Pick<LiveRestoreRequest, 'log' | 'stateDir' | 'newId' | 'abort' | 'onAbort'>, started: Started, err: unknown): Promise<void> {
  const journal = started.journal as LiveJournal | undefined;
  if (journal?.phase === 'mirroring' && req.abort?.aborted && req.onAbort === 'keep') {
    req.log.warn(
      `live restore interrupted: guest ${req.newId} keeps running on its overlays until ${resumeCommand(journal)} (or the next serve start) finishes the copy`,
    );
    await started.export.close().catch(() => undefined);
    return;
  }
  if (journal?.phase === 'pivoting') {
    req.log.error(`live restore failed during the pivot: ${describeError(err)}; the guest and its files are kept: finish with ${resumeCommand(journal)}`);
    await started.export.close().catch(() => undefined);
    return;
  }
  req.log.error(`live restore failed - ${describeError(err)}`);
  await stopQemu(journal, req.log);
  await started.export.close().catch(() => undefined);
  await removeFiles(started.created);
  if (journal) {
    await rm(journal.scratch, { recursive: true, force: true });
    await releaseHold(started.source, journal);
    await removeJournal(req.stateDir, req.newId);
  }
}

/** `quit` through the qemu driver (it waits until QEMU is gone); nothing when none runs. */
async function stopQemu(journal: LiveJournal | undefined, log: TaskLog): Promise<void> {
  if (!journal) return;
  const qemu = qemuAt(journal.qmpSocket);
  if ((await qemu.status(journal.newId).catch(() => 'stopped')) === 'stopped') return;
  await qemu.stop(journal.newId).catch((err: unknown) => log.warn(`stopping the restored guest: ${describeError(err)}`));
  log.warn('the restored guest was stopped; what it wrote since it started is discarded');
}
