/**
 * A small QMP (QEMU Machine Protocol) client over a unix socket.
 * Protocol (docs/interop/qmp-spec.rst): the server greets with `{"QMP":{...}}`; the client must send
 * `qmp_capabilities` before any other command; commands `{"execute":N,"arguments":{...},"id":X}` are
 * answered by `{"return":...,"id":X}` or `{"error":{"class","desc"},"id":X}`; events
 * `{"event":N,"data":{...},"timestamp":{...}}` arrive at any time, also before the response of the
 * command that caused them. Server lines end with `\r\n`. The socket closes when QEMU exits
 * (after `quit` or a guest power-off); pending commands then fail and `closed` resolves.
 * A QMP chardev serves one client at a time: a second connection gets no greeting until the first
 * one closes, hence the greeting timeout. All errors are ColdvaultError('HYPERVISOR') naming the
 * socket and the command.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { ColdvaultError, errnoCode } from '../../core/index.js';

export interface QmpEvent {
  readonly event: string;
  readonly data: Record<string, unknown>;
  readonly timestamp?: { seconds: number; microseconds: number };
}

export type QmpEventListener = (event: QmpEvent) => void;

interface Pending {
  readonly command: string;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

const DEFAULT_GREETING_TIMEOUT_MS = 5_000;

/** An errno-carrying cause for "the socket closed", so callers can tell "QEMU is gone" from other failures. */
function closedCause(): Error {
  return Object.assign(new Error('socket closed'), { code: 'ECONNRESET' });
}

/** Whether a QMP error means nobody (or nobody any more) serves the socket: no file, refused, closed. */
export function isQmpGone(err: unknown): boolean {
  const cause = err instanceof Error ? err.cause : undefined;
  const code = errnoCode(cause) ?? errnoCode(err);
  return code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE';
}

export class QmpClient {
  /** Every event received so far, in order. */
  readonly events: QmpEvent[] = [];
  /** Resolves when the socket has closed (QEMU exited, or `close()`). */
  readonly closed: Promise<void>;
  private readonly listeners = new Set<QmpEventListener>();
  private readonly pending = new Map<string, Pending>();
  private buffer = '';
  private nextId = 1;
  private isClosed = false;
  private markClosed!: () => void;

  private constructor(
    readonly socketPath: string,
    private readonly socket: Socket,
  ) {
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
  }

  /** Connects, reads the greeting and negotiates capabilities. */
  static async connect(socketPath: string, greetingTimeoutMs = DEFAULT_GREETING_TIMEOUT_MS): Promise<QmpClient> {
    const socket = await openSocket(socketPath);
    const client = new QmpClient(socketPath, socket);
    const greeting = client.expectGreeting(greetingTimeoutMs);
    client.attach();
    try {
      await greeting;
      await client.execute('qmp_capabilities');
      return client;
    } catch (err) {
      client.socket.destroy();
      throw err;
    }
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** Runs a command and resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.isClosed) return Promise.reject(this.error(command, 'the socket is closed', closedCause()));
    const id = `cv-${this.nextId++}`;
    const message = JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id });
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { command, resolve: resolve, reject });
      this.socket.write(`${message}\n`);
    });
  }

  /** Registers an event listener; returns the function that removes it. */
  onEvent(listener: QmpEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the first event named `name` (and matching `match`) received so far or from now on. */
  waitForEvent(name: string, timeoutMs: number, match?: (e: QmpEvent) => boolean): Promise<QmpEvent> {
    const fits = (e: QmpEvent): boolean => e.event === name && (match ? match(e) : true);
    const seen = this.events.find(fits);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const finish = (err: Error | null, event?: QmpEvent): void => {
        clearTimeout(timer);
        off();
        if (err) reject(err);
        else resolve(event as QmpEvent);
      };
      const timer = setTimeout(() => finish(this.error(`waiting for event ${name}`, `none within ${timeoutMs} ms`)), timeoutMs);
      const off = this.onEvent((e) => fits(e) && finish(null, e));
      void this.closed.then(() => finish(this.error(`waiting for event ${name}`, 'the socket closed', closedCause())));
    });
  }

  /** Closes the connection (QEMU keeps running). */
  async close(): Promise<void> {
    if (!this.isClosed) this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), 1_000);
    await this.closed;
    clearTimeout(timer);
  }

  private expectGreeting(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(this.error('greeting', `no greeting within ${timeoutMs} ms (is another client connected?)`));
      }, timeoutMs);
      this.pending.set('greeting', {
        command: 'greeting',
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (err) => (clearTimeout(timer), reject(err)),
      });
    });
  }

  private attach(): void {
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => this.receive(chunk));
    this.socket.on('error', () => undefined); // 'close' follows and fails what is pending
    this.socket.on('close', () => this.onClose());
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line) this.dispatch(line);
    }
  }

  private dispatch(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch (err) {
      this.failAll(this.error('reading', `malformed message ${JSON.stringify(line.slice(0, 200))}`, err));
      this.socket.destroy();
      return;
    }
    if ('QMP' in message) this.settle('greeting', message);
    else if (typeof message.event === 'string') this.emit(message as unknown as QmpEvent);
    else if (typeof message.id === 'string') this.settle(message.id, message);
  }

  private settle(id: string, message: Record<string, unknown>): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    const error = message.error as { class?: string; desc?: string } | undefined;
    if (error) p.reject(this.error(p.command, `${error.class ?? 'Error'}: ${error.desc ?? ''}`));
    else p.resolve(message.return);
  }

  private emit(event: QmpEvent): void {
    const normalized: QmpEvent = { ...event, data: event.data ?? {} };
    this.events.push(normalized);
    for (const listener of [...this.listeners]) listener(normalized);
  }

  private onClose(): void {
    this.isClosed = true;
    this.failAll(null);
    this.markClosed();
  }

  private failAll(err: ColdvaultError | null): void {
    for (const p of this.pending.values()) {
      p.reject(err ?? this.error(p.command, 'the socket closed before the response', closedCause()));
    }
    this.pending.clear();
  }

  private error(command: string, detail: string, cause?: unknown): ColdvaultError {
    return new ColdvaultError('HYPERVISOR', `QMP '${command}' on socket ${this.socketPath} failed: ${detail}`, { cause });
  }
}

function openSocket(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(socketPath);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      const detail = errnoCode(err) ?? err.message;
      reject(new ColdvaultError('HYPERVISOR', `connecting to QMP socket ${socketPath} failed: ${detail}`, { cause: err }));
    });
  });
}
