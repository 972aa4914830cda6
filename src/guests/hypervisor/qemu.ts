/**
 * The hypervisor driver for plain QEMU, spoken to over its QMP socket (see qmp.ts).
 * - status: no socket, or nobody listening on it -> 'stopped'; else `query-status`.
 * - shutdown: `system_powerdown` (an ACPI power-button press), then waits until QEMU is gone (its
 *   socket closes) or reports status 'shutdown' (`-no-shutdown`), pressing again every
 *   `buttonRepeatMs` (power-button.ts); STOP_TIMEOUT after timeoutMs, leaving the guest running.
 * - stop: `quit` (a power cut), then waits for the socket to close.
 * - start: runs `startCommand` (`{vmid}` replaced, via /bin/sh -c), which must return once QEMU runs
 *   (e.g. `-daemonize`), then polls `query-status` until 'running'.
 */
import { ColdvaultError, type GuestRunState, type HypervisorDriver, isColdvaultError, type ShutdownOptions } from '../../core/index.js';
import { type ButtonPresser, DEFAULT_BUTTON_REPEAT_MS, pressUntilOff } from './power-button.js';
import { isQmpGone, QmpClient } from './qmp.js';

export interface QemuDriverConfig {
  /** the QMP socket, `{vmid}` replaced; default /var/run/qemu-server/{vmid}.qmp */
  qmpSocket?: string;
  /** the command that starts a guest, `{vmid}` replaced, run by /bin/sh -c */
  startCommand?: string;
  /** while waiting for a shutdown, press the power button again this long after the last press; default 5000, 0 = once */
  buttonRepeatMs?: number;
}

const DEFAULT_QMP_SOCKET = '/var/run/qemu-server/{vmid}.qmp';
const POLL_MS = 1_000;
const START_POLL_MS = 250;
const QUIT_TIMEOUT_MS = 30_000;

interface QueryStatus {
  running: boolean;
  status: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `promise` settles within `ms` (the timer is cleared either way). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function runState(status: string): GuestRunState {
  if (status === 'running') return 'running';
  if (status === 'shutdown') return 'stopped';
  return 'paused';
}

export class QemuDriver implements HypervisorDriver {
  readonly name = 'qemu';

  constructor(private readonly config: QemuDriverConfig = {}) {}

  socketPath(vmid: string): string {
    return (this.config.qmpSocket ?? DEFAULT_QMP_SOCKET).replaceAll('{vmid}', vmid);
  }

  async status(vmid: string): Promise<GuestRunState> {
    const client = await this.tryConnect(vmid);
    if (!client) return 'stopped';
    try {
      return await queryState(client);
    } finally {
      await client.close();
    }
  }

  async shutdown(vmid: string, timeoutMs: number, opts: ShutdownOptions = {}): Promise<void> {
    const client = await this.tryConnect(vmid);
    if (!client) return;
    try {
      if ((await queryState(client)) === 'stopped') return;
      const repeatMs = this.config.buttonRepeatMs ?? DEFAULT_BUTTON_REPEAT_MS;
      if (await pressUntilPowerOff(client, { vmid, timeoutMs, repeatMs, log: opts.log })) return;
      throw new ColdvaultError('STOP_TIMEOUT', `guest ${vmid} did not power off within ${Math.round(timeoutMs / 1000)} s after the ACPI request`);
    } finally {
      await client.close();
    }
  }

  async stop(vmid: string): Promise<void> {
    const client = await this.tryConnect(vmid);
    if (!client) return;
    await ignoreGone(client.execute('quit'));
    if (await settlesWithin(client.closed, QUIT_TIMEOUT_MS)) return;
    await client.close();
    throw new ColdvaultError(
      'HYPERVISOR',
      `guest ${vmid}: QEMU did not exit within ${QUIT_TIMEOUT_MS / 1000} s after 'quit' (socket ${this.socketPath(vmid)})`,
    );
  }

  async start(vmid: string, timeoutMs = 60_000): Promise<void> {
    const state = await this.status(vmid);
    if (state === 'running') return;
    if (state === 'paused') throw new ColdvaultError('START_FAILED', `guest ${vmid} is paused, not stopped: resume it (QMP 'cont') instead`);
    const deadline = Date.now() + timeoutMs;
    await this.runStartCommand(vmid, timeoutMs);
    await this.waitUntilRunning(vmid, deadline, timeoutMs);
  }

  private async runStartCommand(vmid: string, timeoutMs: number): Promise<void> {
    const template = this.config.startCommand;
    if (!template) {
      throw new ColdvaultError(
        'START_FAILED',
        `cannot start guest ${vmid}: the qemu driver needs hypervisor.startCommand (a shell command, {vmid} replaced, that starts the guest's QEMU)`,
      );
    }
    const command = template.replaceAll('{vmid}', vmid);
    const result = await (await import('execa')).execa('/bin/sh', ['-c', command], { reject: false, timeout: timeoutMs, stdin: 'ignore', stdout: 'ignore' });
    if (result.exitCode === 0 && !result.timedOut) return;
    const how = result.timedOut ? `timed out after ${timeoutMs} ms` : `exited with ${result.exitCode ?? result.signal}`;
    const stderr = String(result.stderr ?? '').trim();
    throw new ColdvaultError('START_FAILED', `starting guest ${vmid}: \`${command}\` ${how}${stderr ? `: ${stderr}` : ''}`);
  }

  private async waitUntilRunning(vmid: string, deadline: number, timeoutMs: number): Promise<void> {
    let last: string = 'stopped';
    while (Date.now() < deadline) {
      last = await this.status(vmid).catch((err: unknown) => (isColdvaultError(err) ? err.message : String(err)));
      if (last === 'running') return;
      await sleep(START_POLL_MS);
    }
    throw new ColdvaultError('START_FAILED', `guest ${vmid} was not running within ${timeoutMs / 1000} s after its start command (last: ${last})`);
  }

  /** A connected client, or null when no QEMU serves the socket. */
  private async tryConnect(vmid: string): Promise<QmpClient | null> {
    try {
      return await QmpClient.connect(this.socketPath(vmid));
    } catch (err) {
      if (isQmpGone(err)) return null;
      throw err;
    }
  }
}

async function queryState(client: QmpClient): Promise<GuestRunState> {
  const result = await ignoreGone(client.execute<QueryStatus>('query-status'));
  return result ? runState(result.status) : 'stopped';
}

/** The command's result, or undefined when QEMU went away meanwhile (e.g. it exited on `quit`). */
async function ignoreGone<T>(pending: Promise<T>): Promise<T | undefined> {
  try {
    return await pending;
  } catch (err) {
    if (isQmpGone(err)) return undefined;
    throw err;
  }
}

/** Presses the button (again every repeatMs) and polls each second until the socket closes or QEMU reports 'shutdown'. */
function pressUntilPowerOff(client: QmpClient, how: Pick<ButtonPresser, 'vmid' | 'timeoutMs' | 'repeatMs' | 'log'>): Promise<boolean> {
  return pressUntilOff({
    ...how,
    pollMs: POLL_MS,
    press: async () => void (await ignoreGone(client.execute('system_powerdown'))),
    isOff: async () => !client.isOpen || (await queryState(client)) === 'stopped',
    pause: (ms) => settlesWithin(client.closed, ms),
  });
}
