/**
 * DirectConnection: one kept-alive connection to a node (TLS with the pinned certificate, or plain on
 * loopback) for requests whose answer is read by the socket itself into its destination, and whose
 * body (a chunk's PUT) is written as it is: the socket's `onread` buffer is the caller's buffer (a
 * chunk blob's room) while a body of known length comes in, and a small scratch buffer while a head
 * or a chunked body does. One request at a time.
 *
 * Why not node:https: its client hands a body to JavaScript as a new Buffer per 16 KiB TLS record,
 * through the HTTP parser's callbacks, a readable stream and a 'data' event each; a remote restore
 * spent more CPU on that than on decrypting. Receiving the same 526 MiB of 2.4 MB answers over 8
 * connections on one core took 0.9 CPU-s through node:https and 0.35 CPU-s this way (bench notes of
 * issue 12 in bench/RESULTS.md). Sending, node:http writes its head (a string) and the body with one
 * writev, which copies both into one new buffer before TLS copies them again; here the head and the
 * body are two writes, the body's bytes go to TLS from the caller's buffer.
 */
import { connect as netConnect, type OnReadOpts, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { ColdvaultError, describeError } from '../../core/index.js';
import { originOf, pinnedHandshake } from './handshake.js';
import { type AnswerHead, AnswerSyntaxError, ChunkedBody, headEnd, parseHead } from './http-answer.js';

/** Where a connection goes: the node's URL, its pinned fingerprint (https), the connect timeout. */
export interface DirectTarget {
  url: URL;
  fingerprint?: string;
  connectTimeoutMs: number;
  /** ms an idle connection stays open (below the node's keep-alive timeout) */
  idleMs: number;
}

export interface DirectRequest {
  /** GET unless told */
  method?: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** from the node's root, components already encoded */
  path: string;
  /** the request's body, written from this buffer as it is */
  body?: { type: string; data: Uint8Array };
  token: string;
  /** a successful answer's body goes here (length answered), from `offset` to the ArrayBuffer's end */
  into?: { buf: ArrayBuffer; offset: number };
  /** the largest body accepted without `into` */
  maxBody: number;
  /** the largest body of an answer >= 400 */
  errorBodyMax: number;
  /** ms without a byte before CONNECTION_FAILED */
  timeoutMs: number;
  signal?: AbortSignal;
  /** bytes of body received (as they come) */
  onBytes: (n: number) => void;
  /** a new connection was opened for this request */
  onConnect: () => void;
  /** the error for a body larger than `max` */
  tooLarge: (status: number, max: number) => Error;
}

export interface DirectAnswer {
  status: number;
  /** the body (empty when read `into`) */
  body: Buffer;
  length: number;
}

const SCRATCH_BYTES = 64 * 1024;

interface Exchange {
  req: DirectRequest;
  resolve: (a: DirectAnswer) => void;
  reject: (e: Error) => void;
  phase: 'head' | 'body' | 'chunked';
  headBytes: Buffer;
  head?: AnswerHead;
  /** the body's destination (phase body) */
  target: Buffer;
  /** bytes of the body expected (phase body) */
  length: number;
  /** bytes of the body so far */
  got: number;
  /** room for the body */
  max: number;
  chunked?: ChunkedBody;
  pieces: Buffer[];
  direct: boolean;
  /** takes the abort listener off the caller's signal */
  release: () => void;
}

export class DirectConnection {
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  private exchange: Exchange | undefined;
  private lastError: Error | undefined;
  private gone = false;
  private readonly host: string;
  private readonly idleMs: number;
  readonly socket: Socket;

  private constructor(
    target: DirectTarget,
    private readonly onGone: (c: DirectConnection) => void,
  ) {
    this.host = target.url.host;
    this.idleMs = target.idleMs;
    const { hostname, port, protocol } = target.url;
    const host = hostname.replace(/^\[|\]$/g, '');
    const onread: OnReadOpts = { buffer: () => this.nextBuffer(), callback: (n, buf) => this.onRead(n, buf) };
    // tls.connect takes `onread` as net.connect does (Node's docs); @types/node lacks it
    const tlsOptions: ConnectionOptions & { onread: OnReadOpts } = {
      host,
      port: Number(port || 443),
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      onread,
    };
    this.socket = protocol === 'https:' ? tlsConnect(tlsOptions) : netConnect({ host, port: Number(port || 80), onread });
    this.socket.setNoDelay(true);
    this.socket.on('error', (err) => {
      this.lastError = err;
    });
    this.socket.once('close', () => this.closed());
    this.socket.on('timeout', () => this.timedOut());
  }

  /** Connects (and checks the pinned certificate); CONNECTION_FAILED, TLS_FAILED or FINGERPRINT_MISMATCH otherwise. */
  static async open(target: DirectTarget, onGone: (c: DirectConnection) => void): Promise<DirectConnection> {
    const conn = new DirectConnection(target, onGone);
    const host = target.url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(target.url.port || (target.url.protocol === 'https:' ? 443 : 80));
    if (target.url.protocol === 'https:') {
      await pinnedHandshake(conn.socket as TLSSocket, originOf({ host, port }), target.fingerprint ?? '', target.connectTimeoutMs);
    } else await connected(conn.socket, target.url.origin, target.connectTimeoutMs);
    conn.socket.setTimeout(target.idleMs);
    return conn;
  }

  /** Whether the next request may go over this connection. */
  get usable(): boolean {
    return !this.gone && !this.exchange && !this.socket.destroyed;
  }

  /** Sends GET `req.path` and reads its answer. */
  request(req: DirectRequest): Promise<DirectAnswer> {
    if (!this.usable) return Promise.reject(new ColdvaultError('CONNECTION_FAILED', 'the connection is closed'));
    return new Promise<DirectAnswer>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.exchange === x) this.fail(aborted(req.signal));
      };
      const release = (): void => req.signal?.removeEventListener('abort', onAbort);
      const x: Exchange = {
        req,
        resolve,
        reject,
        phase: 'head',
        headBytes: Buffer.alloc(0),
        target: this.scratch,
        length: 0,
        got: 0,
        max: 0,
        pieces: [],
        direct: false,
        release,
      };
      this.exchange = x;
      if (req.signal?.aborted) return this.fail(aborted(req.signal));
      req.signal?.addEventListener('abort', onAbort, { once: true });
      this.socket.setTimeout(req.timeoutMs);
      const body = req.body;
      const framing = body ? `content-type: ${body.type}\r\ncontent-length: ${body.data.length}\r\n` : '';
      this.socket.write(
        `${req.method ?? 'GET'} ${req.path} HTTP/1.1\r\nhost: ${this.host}\r\nauthorization: Bearer ${req.token}\r\naccept: */*\r\n${framing}\r\n`,
      );
      if (body && body.data.length > 0) this.socket.write(body.data);
    });
  }

  destroy(err?: Error): void {
    if (err && this.exchange) this.fail(err);
    else this.socket.destroy();
  }

  /** The socket reads into the body's destination while a body of known length comes, else into scratch. */
  private nextBuffer(): Uint8Array {
    const x = this.exchange;
    if (x?.phase === 'body' && x.direct && x.got < x.length) return x.target.subarray(x.got, x.length);
    return this.scratch;
  }

  /** Always true: never pause the socket (one request at a time, each answer's room known). */
  private onRead(n: number, buf: Uint8Array): boolean {
    const x = this.exchange;
    try {
      if (!x) throw new AnswerSyntaxError('bytes came without a request');
      if (buf !== this.scratch) {
        x.got += n;
        x.req.onBytes(n);
        if (x.got === x.length) this.complete(x);
        return true;
      }
      this.feed(this.scratch.subarray(0, n));
    } catch (err) {
      this.fail(err as Error);
    }
    return true;
  }

  private feed(bytes: Buffer): void {
    let at = 0;
    while (at < bytes.length) {
      const x = this.exchange;
      if (!x) throw new AnswerSyntaxError('more bytes than the answer has');
      if (x.phase === 'head') at += this.feedHead(x, bytes.subarray(at));
      else if (x.phase === 'body') at += this.feedBody(x, bytes.subarray(at));
      else {
        at += (x.chunked as ChunkedBody).feed(bytes.subarray(at));
        if (x.chunked?.done) this.complete(x);
      }
    }
  }

  private feedHead(x: Exchange, bytes: Buffer): number {
    const before = x.headBytes.length;
    x.headBytes = Buffer.concat([x.headBytes, bytes]);
    const end = headEnd(x.headBytes);
    if (end < 0) return bytes.length;
    x.headBytes = x.headBytes.subarray(0, end);
    this.startBody(x, parseHead(x.headBytes, x.req.method ?? 'GET'));
    return end - before;
  }

  private startBody(x: Exchange, head: AnswerHead): void {
    x.head = head;
    const into = head.status < 400 ? x.req.into : undefined;
    x.max = into ? into.buf.byteLength - into.offset : head.status < 400 ? x.req.maxBody : x.req.errorBodyMax;
    if (head.chunked) {
      x.phase = 'chunked';
      if (into) x.target = Buffer.from(into.buf, into.offset, x.max);
      x.chunked = new ChunkedBody((piece) => this.takePiece(x, piece, Boolean(into)));
      return;
    }
    const length = head.contentLength ?? 0;
    if (length > x.max) throw x.req.tooLarge(head.status, x.max);
    x.phase = 'body';
    x.length = length;
    x.direct = true;
    x.target = into ? Buffer.from(into.buf, into.offset, length) : Buffer.allocUnsafe(length);
    if (length === 0) this.complete(x);
  }

  private feedBody(x: Exchange, bytes: Buffer): number {
    const take = Math.min(x.length - x.got, bytes.length);
    bytes.copy(x.target, x.got, 0, take);
    x.got += take;
    x.req.onBytes(take);
    if (x.got === x.length) this.complete(x);
    return take;
  }

  private takePiece(x: Exchange, piece: Buffer, into: boolean): void {
    x.req.onBytes(piece.length);
    if (x.got + piece.length > x.max) throw x.req.tooLarge(x.head?.status ?? 0, x.max);
    if (into) piece.copy(x.target, x.got);
    else x.pieces.push(Buffer.from(piece));
    x.got += piece.length;
  }

  private complete(x: Exchange): void {
    this.exchange = undefined;
    x.release();
    const body = x.req.into && (x.head?.status ?? 0) < 400 ? Buffer.alloc(0) : x.phase === 'chunked' ? Buffer.concat(x.pieces, x.got) : x.target;
    if (x.head?.close) this.socket.destroy();
    else this.socket.setTimeout(this.idleMs);
    x.resolve({ status: x.head?.status ?? 0, body, length: x.got });
  }

  private fail(err: Error): void {
    const x = this.exchange;
    this.exchange = undefined;
    this.gone = true;
    this.socket.destroy();
    x?.release();
    x?.reject(err);
  }

  private timedOut(): void {
    const x = this.exchange;
    if (!x) {
      this.socket.destroy();
      return;
    }
    this.fail(new ColdvaultError('CONNECTION_FAILED', `no data for ${x.req.timeoutMs / 1000} s`));
  }

  private closed(): void {
    this.gone = true;
    this.onGone(this);
    const x = this.exchange;
    if (!x) return;
    const why = this.lastError ? `: ${describeError(this.lastError)}` : '';
    this.fail(new ColdvaultError('CONNECTION_FAILED', `the connection closed before the answer was complete${why}`, { cause: this.lastError }));
  }
}

/** Resolves once a plain socket connected; CONNECTION_FAILED (refused, unreachable, no answer in time) otherwise. */
function connected(socket: Socket, origin: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (err: Error): void => {
      socket.off('connect', ok);
      socket.setTimeout(0);
      socket.destroy();
      reject(new ColdvaultError('CONNECTION_FAILED', `cannot connect to ${origin}/: ${describeError(err)}`, { cause: err }));
    };
    const onTimeout = (): void => fail(new Error(`no answer within ${timeoutMs / 1000} s`));
    const ok = (): void => {
      socket.off('error', fail).off('timeout', onTimeout);
      socket.setTimeout(0);
      resolve();
    };
    socket.setTimeout(timeoutMs);
    socket.once('connect', ok).once('error', fail).once('timeout', onTimeout);
  });
}

function aborted(signal: AbortSignal | undefined): ColdvaultError {
  return new ColdvaultError('ABORTED', 'aborted', { cause: signal?.reason });
}
