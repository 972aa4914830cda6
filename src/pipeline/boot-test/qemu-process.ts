/**
 * The QEMU process of a boot test: started as a child of this process (under `setpriv --pdeathsig
 * KILL` where util-linux has it, so the kernel kills QEMU even when coldvault itself is killed hard),
 * its exit watched, the end of its stderr kept for messages, its QMP socket connected once QEMU made
 * it, and killed (SIGKILL, then waited for) when the test ends, however it ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ColdvaultError } from '../../core/index.js';
import { QmpClient } from '../../guests/hypervisor/index.js';

export const QEMU_BINARY = 'qemu-system-x86_64';
const SETPRIV = '/usr/bin/setpriv';
const STDERR_KEEP = 2_000;
const QMP_WAIT_MS = 10_000;

export class GuestProcess {
  #stderr = '';
  #exit: { code: number | null; signal: string | null } | undefined;
  readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    child.stderr?.on('data', (b: Buffer) => {
      this.#stderr = (this.#stderr + b.toString()).slice(-STDERR_KEEP);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve();
      });
      child.once('error', (err) => {
        this.#stderr += `\n${err.message}`;
        this.#exit ??= { code: null, signal: null };
        resolve();
      });
    });
  }

  static start(args: readonly string[]): GuestProcess {
    const withDeathSignal = existsSync(SETPRIV);
    const [file, argv] = withDeathSignal ? [SETPRIV, ['--pdeathsig', 'KILL', '--', QEMU_BINARY, ...args]] : [QEMU_BINARY, [...args]];
    return new GuestProcess(spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'] }));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.#exit !== undefined;
  }

  /** How QEMU ended, with the end of its stderr: for the reason of a failed test. */
  describeExit(): string {
    const how = this.#exit?.signal ? `was killed by ${this.#exit.signal}` : `exited with code ${this.#exit?.code ?? '?'}`;
    const said = this.#stderr.trim().split('\n').slice(-3).join(' / ');
    return `QEMU ${how}${said ? `: ${said}` : ''}`;
  }

  /** The QMP connection, once QEMU has made its socket (it does so before the guest runs). */
  async connectQmp(socket: string): Promise<QmpClient> {
    const deadline = Date.now() + QMP_WAIT_MS;
    for (;;) {
      if (this.hasExited) throw new ColdvaultError('BOOT_TEST_FAILED', `the guest could not be started: ${this.describeExit()}`);
      try {
        return await QmpClient.connect(socket);
      } catch (err) {
        if (Date.now() > deadline)
          throw new ColdvaultError('BOOT_TEST_FAILED', `QEMU's QMP socket did not answer within ${QMP_WAIT_MS / 1000} s`, { cause: err });
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** SIGKILL (a test guest has nothing to save) and wait until it is gone. */
  async kill(): Promise<void> {
    if (this.hasExited) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}
