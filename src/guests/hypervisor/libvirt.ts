/**
 * The libvirt hypervisor driver: the `virsh` command (interfaces.md §6), `LC_ALL=C`.
 *   status:    `virsh -c URI domstate DOM`  (`running`, `shut off (shutdown)`, `paused`...)
 *   shutdown:  `virsh -c URI shutdown DOM --mode acpi`, then `domstate` every `pollMs` until
 *              `shut off`, the shutdown sent again every `buttonRepeatMs` (power-button.ts; a repeat
 *              refused because the domain went off meanwhile is no error); past the timeout
 *              STOP_TIMEOUT and the guest is left running
 *   stop:      `virsh -c URI destroy DOM`;  start: `virsh -c URI start DOM`, then `domstate` until running
 *   diskPaths: `virsh -c URI domblklist DOM --details`, `disk` rows with a source (no cdroms)
 * DOM is the `domain` template with `{vmid}` replaced. A failing virsh is HYPERVISOR naming the command.
 *
 * Session mode (test:/// URIs only): libvirt's test driver keeps domain state inside one virsh
 * process, so separate calls always see the initial state. With `session: true` every call is one
 * virsh invocation running the state changes that succeeded so far, then the new command
 * (`virsh -c test:///default 'shutdown test; echo <mark>; domstate test'`); only the output after the
 * mark is the call's. That replays commands, which is why it is refused for real hypervisors.
 */
import { startAndWait } from './start-wait.js';
import { ColdvaultError, type GuestRunState, type HypervisorDriver, type ShutdownOptions } from '../../core/index.js';
import { DEFAULT_BUTTON_REPEAT_MS, pressUntilOff } from './power-button.js';
import { commandError, runCommand, type CommandResult, type CommandRunner } from './run-command.js';

export interface LibvirtDriverOptions {
  /** connection URI (`qemu:///system`, `test:///default`); default virsh's own default */
  uri?: string;
  /** domain name template, `{vmid}` replaced; default `{vmid}` */
  domain?: string;
  /** how commands are run; default execa (tests pass a fake) */
  run?: CommandRunner;
  /** domstate poll interval while waiting for shutdown/start; default 1000 ms */
  pollMs?: number;
  /** the virsh executable; default `virsh` from PATH */
  virsh?: string;
  /** `virsh shutdown --mode`; default 'acpi'; null = no --mode (libvirt picks; the test driver supports only this) */
  shutdownMode?: string | null;
  /** test:/// URIs only: carry state across calls by replaying it in one virsh invocation (see header) */
  session?: boolean;
  /** while waiting for a shutdown, send it again this long after the last one; default 5000, 0 = once */
  buttonRepeatMs?: number;
}

const COMMAND_TIMEOUT_MS = 120_000;
const DEFAULT_START_TIMEOUT_MS = 5 * 60_000;
const SESSION_MARK = '@@coldvault-session@@';
/** virsh commands that change state, replayed in session mode */
const MUTATING = new Set(['shutdown', 'destroy', 'start']);

/** Maps `virsh domstate` output (first line, reason in parentheses dropped) to a run state. */
export function parseDomstate(stdout: string): GuestRunState {
  const line = stdout.split('\n').find((l) => l.trim() !== '') ?? '';
  const state = line.replace(/\(.*\)\s*$/, '').trim();
  switch (state) {
    case 'running':
    case 'idle': // blocked on a resource, still up
    case 'blocked':
    case 'in shutdown': // still up until it reaches 'shut off'
      return 'running';
    case 'paused':
    case 'pmsuspended':
      return 'paused';
    case 'shut off':
    case 'crashed':
      return 'stopped';
    default:
      return 'unknown';
  }
}

/** Disk image paths from `virsh domblklist DOM --details`: `disk` rows whose source is not `-`. */
export function parseDomblklist(stdout: string): string[] {
  const lines = stdout.split('\n');
  const sep = lines.findIndex((l) => /^-{3,}\s*$/.test(l.trim()));
  const paths: string[] = [];
  for (const raw of lines.slice(sep + 1)) {
    const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(.*)$/.exec(raw.trim());
    if (m === null) continue;
    const device = m[2];
    const source = (m[4] ?? '').trim();
    if (device === 'disk' && source !== '' && source !== '-') paths.push(source);
  }
  return paths;
}

/** Quotes one argument for virsh's own command-string parser (same rules as sh single quotes). */
function quoteVirsh(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class LibvirtDriver implements HypervisorDriver {
  readonly name = 'libvirt';
  private readonly uri: string | undefined;
  private readonly domainTemplate: string;
  private readonly run: CommandRunner;
  private readonly pollMs: number;
  private readonly virshPath: string;
  private readonly shutdownMode: string | null;
  private readonly session: boolean;
  private readonly buttonRepeatMs: number;
  /** session mode: the state-changing commands that succeeded, in order */
  private readonly history: string[] = [];

  constructor(opts: LibvirtDriverOptions = {}) {
    this.uri = opts.uri;
    this.domainTemplate = opts.domain ?? '{vmid}';
    this.run = opts.run ?? runCommand;
    this.pollMs = opts.pollMs ?? 1000;
    this.virshPath = opts.virsh ?? 'virsh';
    this.shutdownMode = opts.shutdownMode === undefined ? 'acpi' : opts.shutdownMode;
    this.session = opts.session ?? false;
    this.buttonRepeatMs = opts.buttonRepeatMs ?? DEFAULT_BUTTON_REPEAT_MS;
    if (this.session && !(this.uri ?? '').startsWith('test:')) {
      throw new ColdvaultError('USAGE', `libvirt session mode replays commands and is only for test:/// URIs, not '${this.uri ?? '(default)'}'`);
    }
  }

  /** The domain name of a guest. */
  domainOf(vmid: string): string {
    const dom = this.domainTemplate.replaceAll('{vmid}', vmid);
    if (dom === '' || dom.startsWith('-')) {
      throw new ColdvaultError('USAGE', `invalid libvirt domain name '${dom}' for guest ${vmid}`);
    }
    return dom;
  }

  async status(vmid: string): Promise<GuestRunState> {
    const result = await this.virsh(['domstate', this.domainOf(vmid)]);
    return parseDomstate(result.stdout);
  }

  async shutdown(vmid: string, timeoutMs: number, opts: ShutdownOptions = {}): Promise<void> {
    const dom = this.domainOf(vmid);
    if ((await this.status(vmid)) === 'stopped') return;
    const off = await pressUntilOff({
      vmid,
      timeoutMs,
      repeatMs: this.buttonRepeatMs,
      pollMs: this.pollMs,
      log: opts.log,
      press: (count) => this.pressButton(vmid, dom, count),
      isOff: async () => (await this.status(vmid)) === 'stopped',
      pause: sleep,
    });
    if (off) return;
    throw new ColdvaultError(
      'STOP_TIMEOUT',
      `shutting down guest ${vmid} (libvirt domain '${dom}') timed out after ${Math.round(timeoutMs / 1000)} s; it is still running`,
    );
  }

  /** `virsh shutdown`; a repeat that fails because the domain is off by now is no error. */
  private async pressButton(vmid: string, dom: string, count: number): Promise<void> {
    const mode = this.shutdownMode === null ? [] : ['--mode', this.shutdownMode];
    try {
      await this.virsh(['shutdown', dom, ...mode]);
    } catch (err) {
      if (count === 1 || (await this.status(vmid)) !== 'stopped') throw err;
    }
  }

  async stop(vmid: string): Promise<void> {
    const dom = this.domainOf(vmid);
    if ((await this.status(vmid)) === 'stopped') return;
    await this.virsh(['destroy', dom]);
  }

  async start(vmid: string, timeoutMs = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    const dom = this.domainOf(vmid);
    await startAndWait({
      vmid,
      timeoutMs,
      pollMs: this.pollMs,
      what: `'virsh start' of libvirt domain '${dom}'`,
      status: () => this.status(vmid),
      start: () => this.virsh(['start', dom]),
    });
  }

  async diskPaths(vmid: string): Promise<string[]> {
    const result = await this.virsh(['domblklist', this.domainOf(vmid), '--details']);
    return parseDomblklist(result.stdout);
  }

  private base(): string[] {
    return this.uri === undefined ? [this.virshPath] : [this.virshPath, '-c', this.uri];
  }

  /** Runs one virsh command (in session mode: after the replayed history); throws HYPERVISOR on failure. */
  private async virsh(cmd: string[]): Promise<CommandResult> {
    if (!this.session) {
      const argv = [...this.base(), ...cmd];
      const result = await this.run(argv, { timeoutMs: COMMAND_TIMEOUT_MS });
      if (result.exitCode !== 0 || result.timedOut) throw commandError(argv, result);
      return result;
    }
    const line = cmd.map(quoteVirsh).join(' ');
    const argv = [...this.base(), [...this.history, `echo ${SESSION_MARK}`, line].join('; ')];
    const result = await this.run(argv, { timeoutMs: COMMAND_TIMEOUT_MS });
    // virsh exits with the status of the last command of the string: the new one
    if (result.exitCode !== 0 || result.timedOut) throw commandError(argv, result);
    const at = result.stdout.indexOf(`${SESSION_MARK}\n`);
    const stdout = at < 0 ? result.stdout : result.stdout.slice(at + SESSION_MARK.length + 1);
    if (MUTATING.has(cmd[0] ?? '')) this.history.push(line);
    return { ...result, stdout };
  }
}
