/**
 * A real `coldvault serve` process (the built CLI) for tests: started with the given arguments, ready
 * once it printed its URL (and, over HTTPS, its certificate's fingerprint); stopped with SIGTERM.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnCli } from './fixtures.js';

export interface ServeProcess {
  child: ChildProcess;
  /** `http(s)://127.0.0.1:PORT` (no trailing slash) */
  url: string;
  /** the SHA-256 fingerprint serve printed (HTTPS only) */
  fingerprint?: string;
  /** everything it wrote so far, stdout and stderr */
  out(): string;
  /** SIGTERM; resolves with the exit code */
  stop(): Promise<number | null>;
}

const READY = /on (https?:\/\/\S+?)\/? \(node/;

/** `launch` starts the CLI with the given arguments (default: here; the cluster harness: in a network namespace). */
export function startServe(args: string[], timeoutMs = 20_000, launch: (cliArgs: string[]) => ChildProcess = spawnCli): Promise<ServeProcess> {
  const child = launch(['serve', ...args]);
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (b: Buffer): void => {
      out += b.toString();
      const url = READY.exec(out)?.[1];
      if (!url || (url.startsWith('https:') && !/fingerprint \S+\n/.test(out))) return;
      clearTimeout(timer);
      resolve({ child, url, fingerprint: /fingerprint (\S+)\n/.exec(out)?.[1], out: () => out, stop });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before it was ready:\n${out}`));
    });
  });
}
