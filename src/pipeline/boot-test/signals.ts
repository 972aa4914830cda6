/**
 * The success signals of a boot test, each a probe asked again until it answers or the test ends:
 * - serial: a line matching a pattern on the guest's first serial port (QEMU writes it to a file);
 *   the default pattern is a login prompt (`<host> login:` at the end of a line);
 * - agent: the QEMU guest agent answers `guest-ping` on its virtio-serial channel;
 * - script: a user script exits 0 (run again every few seconds while it exits non-zero, each run
 *   bounded by the time left; it gets the serial log and the agent socket in its environment).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';

export const DEFAULT_EXPECT = '\\S+ login: *$';

export type BootSignal = { kind: 'serial'; expect: string } | { kind: 'agent' } | { kind: 'script'; path: string };

/** Where a probe looks: the files and sockets of one running test guest. */
export interface ProbeContext {
  serialLog: string;
  agentSocket: string;
  guestId: string;
  version: number;
  /** ms since the epoch at which the test gives up */
  deadline: number;
  /** ends a running script at once (SIGINT / SIGTERM of the command, a job aborted) */
  abort?: AbortSignal;
}

/** What a probe answers: undefined while the guest has not given the signal; else what showed it. */
export type Probe = (ctx: ProbeContext) => Promise<string | undefined>;

/** How messages and the catalog name a signal. */
export function describeSignal(signal: BootSignal): string {
  if (signal.kind === 'serial') return `serial /${signal.expect}/`;
  if (signal.kind === 'agent') return 'guest-agent';
  return `script ${signal.path}`;
}

export function probeOf(signal: BootSignal): { probe: Probe; everyMs: number } {
  if (signal.kind === 'serial') {
    const pattern = new RegExp(signal.expect, 'm');
    return { probe: (ctx) => serialMatch(ctx.serialLog, pattern), everyMs: 200 };
  }
  if (signal.kind === 'agent') return { probe: (ctx) => agentPing(ctx.agentSocket), everyMs: 1_000 };
  return { probe: (ctx) => scriptSays(signal.path, ctx), everyMs: 2_000 };
}

/**
 * The serial console as text: terminal control sequences (a firmware's or getty's screen clearing,
 * colours, cursor moves: ESC [ ... letter, ESC and one character) and other control characters but
 * newline and tab removed, so patterns match what a person reads and no escape reaches the catalog,
 * a mail or the web UI.
 */
export function consoleText(raw: string): string {
  return raw.replace(/\x1b\[[0-9;?=<>]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

async function readConsole(file: string): Promise<string> {
  return consoleText(await readFile(file, 'utf8').catch(() => ''));
}

async function serialMatch(file: string, pattern: RegExp): Promise<string | undefined> {
  const text = await readConsole(file);
  const m = pattern.exec(text);
  if (!m) return undefined;
  const start = text.lastIndexOf('\n', m.index) + 1;
  const end = text.indexOf('\n', m.index);
  return `serial: ${text.slice(start, end < 0 ? undefined : end).trim()}`;
}

/** The last non-empty lines of the serial console, for the reason of a failed test. */
export async function serialTail(file: string, lines = 3): Promise<string> {
  const text = await readConsole(file);
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-lines)
    .join(' / ');
}

const AGENT_ANSWER_MS = 800;

/** One `guest-ping` on a fresh connection; the agent answers `{"return": {}}` once it runs. */
function agentPing(socket: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const conn = connect(socket);
    let got = '';
    const done = (answer: string | undefined): void => {
      clearTimeout(timer);
      conn.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(undefined), AGENT_ANSWER_MS);
    conn.on('connect', () => conn.write('{"execute":"guest-ping"}\n'));
    conn.on('data', (b: Buffer) => {
      got += b.toString();
      if (/"return"\s*:/.test(got)) done('guest-agent: guest-ping answered');
    });
    conn.on('error', () => done(undefined));
  });
}

function scriptSays(path: string, ctx: ProbeContext): Promise<string | undefined> {
  const env = {
    ...process.env,
    COLDVAULT_SERIAL_LOG: ctx.serialLog,
    COLDVAULT_GUEST_AGENT_SOCKET: ctx.agentSocket,
    COLDVAULT_VMID: ctx.guestId,
    COLDVAULT_VERSION: String(ctx.version),
  };
  const timeout = Math.max(1, ctx.deadline - Date.now());
  return new Promise((resolve) => {
    execFile(path, [], { env, timeout, killSignal: 'SIGKILL', signal: ctx.abort }, (err, stdout) => {
      const said = stdout.trim().split('\n').at(-1) ?? '';
      resolve(err ? undefined : `script: exited 0${said ? ` (${said.slice(0, 200)})` : ''}`);
    });
  });
}
