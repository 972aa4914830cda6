/**
 * Requests from inside a node's namespace, for the cluster tests: `Relay.start(from, to)` runs
 * netns-relay.mjs in `from`'s namespace, pinned to `to`'s fingerprint; `request` and `send` (the
 * Send of test/server/upload-client.ts, so a Pusher pushes through it) go over its unix socket, and
 * the relay makes the HTTPS request from that namespace with the real pinning client. An answer
 * with status 599 (RELAY_FAILED) is the client's own failure, its code in `code`
 * (FINGERPRINT_MISMATCH, CONNECTION_FAILED, ...); any other status is the node's answer.
 */
import type { ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { REPO } from './fixtures.js';
import type { ClusterNode, Target } from './netns-node.js';
import type { Answer, Send } from '../server/upload-client.js';

export const RELAY_FAILED = 599;

export interface RelayOptions {
  /** ms to connect and finish the TLS handshake (default 3000) */
  connectTimeoutMs?: number;
  /** ms without a byte on a request before it fails (default 5000) */
  idleTimeoutMs?: number;
}

let relays = 0;

export class Relay {
  private constructor(
    readonly child: ChildProcess,
    readonly socket: string,
  ) {}

  /** Starts a relay in `from`'s namespace to `to` (a node, or any url + fingerprint to pin). */
  static async start(from: ClusterNode, to: Target, opts: RelayOptions = {}): Promise<Relay> {
    const socket = join(from.root, `relay-${++relays}.sock`);
    const job = {
      socket,
      url: to.url,
      fingerprint: to.fingerprint,
      connectTimeoutMs: opts.connectTimeoutMs ?? 3000,
      idleTimeoutMs: opts.idleTimeoutMs ?? 5000,
    };
    const child = from.spawn(process.execPath, [join(REPO, 'test/helpers/netns-relay.mjs'), JSON.stringify(job)]);
    await ready(child);
    return new Relay(child, socket);
  }

  /** One request to the target: `body` a Buffer (octet-stream) or JSON; `token` as Bearer. */
  request(method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<Answer> {
    const { payload, type } = encode(opts.body);
    const headers: Record<string, string> = { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(type ? { 'content-type': type } : {}) };
    return new Promise((resolve, reject) => {
      const req = httpRequest({ socketPath: this.socket, method, path, headers }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve(answer(res.statusCode ?? 0, Buffer.concat(parts))));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** The upload client's transport with `token`. */
  send(token: string): Send {
    return (method, url, body) => this.request(method, url, { token, body });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await gone;
  }
}

function ready(child: ChildProcess): Promise<void> {
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('ready\n')) resolve();
    });
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    child.once('exit', (code) => reject(new Error(`the relay exited with ${code} before it was ready:\n${out}`)));
  });
}

function encode(body: unknown): { payload?: Buffer | string; type?: string } {
  if (body === undefined) return {};
  if (Buffer.isBuffer(body)) return { payload: body, type: 'application/octet-stream' };
  return { payload: JSON.stringify(body), type: 'application/json' };
}

function answer(status: number, body: Buffer): Answer {
  const json = <T>(): T => JSON.parse(body.toString('utf8')) as T;
  return { status, body, json, code: status >= 400 ? errorCode(body) : undefined };
}

function errorCode(body: Buffer): string | undefined {
  try {
    return (JSON.parse(body.toString('utf8')) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}
