/**
 * A real `coldvault export` process (the built CLI) for tests: started with the given arguments,
 * ready once it printed its URIs (`lines` of them; with --json: the whole document); stopped with
 * SIGTERM, which must close every client and remove the socket.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { expect } from 'vitest';
import { CLI } from './fixtures.js';

export interface ExportProcess {
  child: ChildProcess;
  /** stdout and stderr so far */
  out: () => string;
  stdout: () => string;
  /** SIGTERM (when still running); resolves with the exit code */
  stop: () => Promise<number | null>;
}

export function startExportProcess(args: string[], lines = 1, env: Record<string, string> = {}): Promise<ExportProcess> {
  const child = spawn(process.execPath, [CLI, 'export', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let stdout = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const printed = (): boolean => {
    if (!args.includes('--json')) return (stdout.match(/^\w+: nbd/gm) ?? []).length >= lines;
    try {
      JSON.parse(stdout);
      return true;
    } catch {
      return false;
    }
  };
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  return new Promise((resolve, reject) => {
    const onData = (b: Buffer, toStdout: boolean): void => {
      out += b.toString();
      if (toStdout) stdout += b.toString();
      if (printed()) resolve({ child, out: () => out, stdout: () => stdout, stop });
    };
    child.stdout?.on('data', (b: Buffer) => onData(b, true));
    child.stderr?.on('data', (b: Buffer) => onData(b, false));
    void exited.then((code) => reject(new Error(`export exited ${code} before it served:\n${out}`)));
  });
}

/**
 * Serves `export ARGS --socket SOCKET`, checks with qemu-img compare that export `disk` holds the bytes
 * of raw `image`, and that the export ends with 0 once told to (SIGTERM): at once, not after some
 * connection's idle timeout (10 s is a bound for a hang, not a speed measure).
 */
export async function expectExportIdentical(args: string[], socket: string, disk: string, image: string): Promise<void> {
  const ex = await startExportProcess([...args, '--socket', socket]);
  try {
    const same = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', `nbd+unix:///${disk}?socket=${socket}`, image]);
    expect(same.stdout).toContain('Images are identical');
  } finally {
    const told = Date.now();
    expect(await ex.stop()).toBe(0);
    expect(Date.now() - told, `the export took ${Date.now() - told} ms to end after SIGTERM`).toBeLessThan(10_000);
  }
}
