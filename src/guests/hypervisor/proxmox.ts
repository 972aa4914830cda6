/**
 * The Proxmox VE hypervisor driver: the `qm` command, called the way vzdump's stop mode calls it
 * (qemu-server `_do_vm_stop`, pve-guest-common AbstractConfig `set_lock`/`remove_lock`, interfaces.md §2):
 *   status:   `qm status <vmid>`                      -> `status: running|stopped|paused`
 *   lock:     `qm set <vmid> --lock backup`  (qemu-server update_vm checks the lock and writes it under
 *             the config file's flock, so a guest locked already is refused atomically: stderr
 *             `VM is locked (migrate)` -> GUEST_LOCKED naming the lock; `lock` is a fast-plug option,
 *             written at once also while the guest runs)
 *   unlock:   `qm config <vmid> --current`; only if it says `lock: backup`: `qm unlock <vmid>`
 *   shutdown: `qm shutdown <vmid> [--skiplock] --keepActive --timeout <s>`  (ACPI/agent powerdown;
 *             qm polls and dies `VM quit/powerdown failed - got timeout` -> STOP_TIMEOUT, guest left running)
 *             qm presses once and then only waits (qemu-server vm_stop: one `system_powerdown`, or
 *             `guest-shutdown` when the agent is on, under the config's flock, then check_running each
 *             second until --timeout). So pressing again (power-button.ts) is running `qm shutdown`
 *             again: each call waits `buttonRepeatMs` (its --timeout, whole seconds), and a call that
 *             dies `VM quit/powerdown failed[ - got timeout]` (also an agent that is not up yet) is
 *             followed by the next, until the stop timeout. Each call is a task in Proxmox's task
 *             log; those before the guest reacted end in that error. `buttonRepeatMs: 0` is vzdump's
 *             single `qm shutdown --timeout <stop timeout>`.
 *   stop:     `qm stop <vmid> [--skiplock]`             (hard stop)
 *   start:    `qm start <vmid> [--skiplock]`, then `qm status` until running (else START_FAILED)
 * `--skiplock` is passed only while this driver holds the backup lock on that guest, as vzdump does:
 * a lock someone else set (migrate, snapshot, their backup) is never passed over. `qm start` without
 * `--skiplock` refuses a locked guest, which is what keeps a guest off while coldvault reads its disks.
 * A non-zero exit of any other call is ColdvaultError('HYPERVISOR') naming the command line.
 * Read from the qemu-server and pve-guest-common sources; there is no Proxmox host here to run it on.
 */
import { startAndWait } from './start-wait.js';
import { ColdvaultError, type GuestRunState, type HypervisorDriver, parseGuestId, type ShutdownOptions } from '../../core/index.js';
import { DEFAULT_BUTTON_REPEAT_MS, pressAgainMessage } from './power-button.js';
import { commandError, formatCommand, runChecked, runCommand, type CommandResult, type CommandRunner } from './run-command.js';

export interface ProxmoxDriverOptions {
  /** how commands are run; default execa (tests pass a fake) */
  run?: CommandRunner;
  /** the `qm` executable; default `qm` from PATH */
  qm?: string;
  /** status poll interval after `qm start`; default 1000 ms */
  pollMs?: number;
  /** while waiting for a shutdown, run `qm shutdown` again this long after the last one; default 5000, 0 = once (see header) */
  buttonRepeatMs?: number;
}

interface QmShutdown {
  argv: string[];
  result: CommandResult;
}

/** extra time given to `qm shutdown` over its own `--timeout` before we kill it */
const SHUTDOWN_GRACE_MS = 60_000;
const STATUS_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_START_TIMEOUT_MS = 5 * 60_000;
const CONFIG_TIMEOUT_MS = 60_000;
/** the lock vzdump sets for a backup, in every mode */
const BACKUP_LOCK = 'backup';

/** Parses `qm status` output (`status: running`); anything else is 'unknown'. */
export function parseQmStatus(stdout: string): GuestRunState {
  const m = /^status:\s*(\S+)/m.exec(stdout);
  switch (m?.[1]) {
    case 'running':
      return 'running';
    case 'stopped':
      return 'stopped';
    case 'paused':
      return 'paused';
    default:
      return 'unknown';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** The `lock:` value of `qm config` output (its main section), or undefined when unlocked. */
export function parseQmLock(stdout: string): string | undefined {
  return /^lock:\s*(\S+)/m.exec(stdout)?.[1];
}

/** STOP_TIMEOUT when qm (or we, `gaveUp`) ran out of time, else the HYPERVISOR error of the command. */
function shutdownError(vmid: string, timeoutMs: number, { argv, result }: QmShutdown, gaveUp: boolean): ColdvaultError {
  if (!gaveUp && !result.timedOut && !/got timeout/i.test(result.stderr)) return commandError(argv, result);
  return new ColdvaultError(
    'STOP_TIMEOUT',
    `shutting down guest ${vmid} timed out after ${Math.ceil(timeoutMs / 1000)} s; it is still running (command '${formatCommand(argv)}')`,
    { cause: commandError(argv, result) },
  );
}

function lockedError(vmid: string, lock: string, cause?: unknown): ColdvaultError {
  return new ColdvaultError(
    'GUEST_LOCKED',
    `guest ${vmid} is locked by another Proxmox operation ('lock: ${lock}' in its config): it is neither stopped nor backed up now`,
    { cause },
  );
}

export class ProxmoxDriver implements HypervisorDriver {
  readonly name = 'proxmox';
  private readonly run: CommandRunner;
  private readonly qm: string;
  private readonly pollMs: number;
  private readonly buttonRepeatMs: number;
  /** guests on which this driver set the backup lock (its own calls pass over it) */
  private readonly held = new Set<string>();

  constructor(opts: ProxmoxDriverOptions = {}) {
    this.run = opts.run ?? runCommand;
    this.qm = opts.qm ?? 'qm';
    this.pollMs = opts.pollMs ?? 1000;
    this.buttonRepeatMs = opts.buttonRepeatMs ?? DEFAULT_BUTTON_REPEAT_MS;
  }

  async status(vmid: string): Promise<GuestRunState> {
    parseGuestId(vmid);
    const result = await runChecked(this.run, [this.qm, 'status', vmid], { timeoutMs: STATUS_TIMEOUT_MS });
    return parseQmStatus(result.stdout);
  }

  async shutdown(vmid: string, timeoutMs: number, opts: ShutdownOptions = {}): Promise<void> {
    if ((await this.status(vmid)) === 'stopped') return;
    const first = Date.now();
    const deadline = first + timeoutMs;
    for (let count = 2; ; count++) {
      const pressedAt = Date.now();
      const shutdown = await this.qmShutdown(vmid, Math.min(this.buttonRepeatMs || Number.POSITIVE_INFINITY, deadline - pressedAt));
      if (shutdown.result.exitCode === 0 && !shutdown.result.timedOut) return;
      if (!this.missedPress(shutdown.result)) throw shutdownError(vmid, timeoutMs, shutdown, false);
      await sleep(Math.min(pressedAt + this.buttonRepeatMs, deadline) - Date.now());
      if (Date.now() >= deadline) throw shutdownError(vmid, timeoutMs, shutdown, true);
      opts.log?.info(pressAgainMessage(vmid, count, Date.now() - first));
    }
  }

  /** One `qm shutdown` (one press) that waits up to waitMs, in whole seconds. */
  private async qmShutdown(vmid: string, waitMs: number): Promise<QmShutdown> {
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    const argv = [this.qm, 'shutdown', vmid, ...this.skiplock(vmid), '--keepActive', '--timeout', String(seconds)];
    return { argv, result: await this.run(argv, { timeoutMs: seconds * 1000 + SHUTDOWN_GRACE_MS }) };
  }

  /** qm gave up on this press (the guest did not power off, or the agent did not answer): press again. */
  private missedPress(result: CommandResult): boolean {
    return this.buttonRepeatMs > 0 && !result.timedOut && /quit\/powerdown failed/i.test(result.stderr);
  }

  async stop(vmid: string): Promise<void> {
    if ((await this.status(vmid)) === 'stopped') return;
    await runChecked(this.run, [this.qm, 'stop', vmid, ...this.skiplock(vmid)], { timeoutMs: STOP_TIMEOUT_MS });
  }

  async start(vmid: string, timeoutMs = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    await startAndWait({
      vmid,
      timeoutMs,
      pollMs: this.pollMs,
      what: "'qm start'",
      status: () => this.status(vmid),
      start: () => runChecked(this.run, [this.qm, 'start', vmid, ...this.skiplock(vmid)], { timeoutMs }),
    });
  }

  async lockBackup(vmid: string): Promise<void> {
    parseGuestId(vmid);
    const argv = [this.qm, 'set', vmid, '--lock', BACKUP_LOCK];
    const result = await this.run(argv, { timeoutMs: CONFIG_TIMEOUT_MS });
    if (result.exitCode === 0 && !result.timedOut) {
      this.held.add(vmid);
      return;
    }
    const lock = /is locked \(([^)]+)\)/.exec(result.stderr)?.[1];
    throw lock === undefined ? commandError(argv, result) : lockedError(vmid, lock, commandError(argv, result));
  }

  async unlockBackup(vmid: string): Promise<void> {
    parseGuestId(vmid);
    const config = await runChecked(this.run, [this.qm, 'config', vmid, '--current'], { timeoutMs: CONFIG_TIMEOUT_MS });
    const lock = parseQmLock(config.stdout);
    if (lock === BACKUP_LOCK) await runChecked(this.run, [this.qm, 'unlock', vmid], { timeoutMs: CONFIG_TIMEOUT_MS });
    this.held.delete(vmid);
    if (lock !== undefined && lock !== BACKUP_LOCK) {
      throw new ColdvaultError('GUEST_LOCKED', `guest ${vmid} holds 'lock: ${lock}', not the 'lock: backup' coldvault set: left in place`);
    }
  }

  private skiplock(vmid: string): string[] {
    return this.held.has(vmid) ? ['--skiplock'] : [];
  }
}
