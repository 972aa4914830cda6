/**
 * The Proxmox VE hypervisor driver: the `qm` command, called the way vzdump's stop mode calls it
 * (qemu-server `_do_vm_stop`, interfaces.md §2):
 *   status:   `qm status <vmid>`                      -> `status: running|stopped|paused`
 *   shutdown: `qm shutdown <vmid> --skiplock --keepActive --timeout <s>`  (ACPI/agent powerdown;
 *             qm polls and dies `VM quit/powerdown failed - got timeout` -> STOP_TIMEOUT, guest left running)
 *   stop:     `qm stop <vmid> --skiplock`             (hard stop)
 *   start:    `qm start <vmid> --skiplock`, then `qm status` until running (else START_FAILED)
 * A non-zero exit of any other call is ColdvaultError('HYPERVISOR') naming the command line.
 */
import { startAndWait } from './start-wait.js';
import { ColdvaultError } from '../../core/errors.js';
import type { GuestRunState, HypervisorDriver } from '../../core/hypervisor.js';
import { parseGuestId } from '../../core/ids.js';
import { commandError, formatCommand, runChecked, runCommand, type CommandRunner } from './run-command.js';

export interface ProxmoxDriverOptions {
  /** how commands are run; default execa (tests pass a fake) */
  run?: CommandRunner;
  /** the `qm` executable; default `qm` from PATH */
  qm?: string;
  /** status poll interval after `qm start`; default 1000 ms */
  pollMs?: number;
}

/** extra time given to `qm shutdown` over its own `--timeout` before we kill it */
const SHUTDOWN_GRACE_MS = 60_000;
const STATUS_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_START_TIMEOUT_MS = 5 * 60_000;

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


export class ProxmoxDriver implements HypervisorDriver {
  readonly name = 'proxmox';
  private readonly run: CommandRunner;
  private readonly qm: string;
  private readonly pollMs: number;

  constructor(opts: ProxmoxDriverOptions = {}) {
    this.run = opts.run ?? runCommand;
    this.qm = opts.qm ?? 'qm';
    this.pollMs = opts.pollMs ?? 1000;
  }

  async status(vmid: string): Promise<GuestRunState> {
    parseGuestId(vmid);
    const result = await runChecked(this.run, [this.qm, 'status', vmid], { timeoutMs: STATUS_TIMEOUT_MS });
    return parseQmStatus(result.stdout);
  }

  async shutdown(vmid: string, timeoutMs: number): Promise<void> {
    if ((await this.status(vmid)) === 'stopped') return;
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    const argv = [this.qm, 'shutdown', vmid, '--skiplock', '--keepActive', '--timeout', String(seconds)];
    const result = await this.run(argv, { timeoutMs: seconds * 1000 + SHUTDOWN_GRACE_MS });
    if (result.exitCode === 0 && !result.timedOut) return;
    if (result.timedOut || /got timeout/i.test(result.stderr)) {
      throw new ColdvaultError(
        'STOP_TIMEOUT',
        `shutting down guest ${vmid} timed out after ${seconds} s; it is still running (command '${formatCommand(argv)}')`,
        { cause: commandError(argv, result) },
      );
    }
    throw commandError(argv, result);
  }

  async stop(vmid: string): Promise<void> {
    if ((await this.status(vmid)) === 'stopped') return;
    await runChecked(this.run, [this.qm, 'stop', vmid, '--skiplock'], { timeoutMs: STOP_TIMEOUT_MS });
  }

  async start(vmid: string, timeoutMs = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    await startAndWait({
      vmid, timeoutMs, pollMs: this.pollMs, what: "'qm start'",
      status: () => this.status(vmid), start: () => runChecked(this.run, [this.qm, 'start', vmid, '--skiplock'], { timeoutMs }),
    });
  }
}
