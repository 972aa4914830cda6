/**
 * Wire: the HTTP requests of one client to one node. One keep-alive agent (a PinnedAgent over HTTPS,
 * a plain one on loopback), at most `maxInFlight` requests at once (Gate; the agent has as many
 * sockets, so none waits inside it), the bearer token on each, request bodies metered by the
 * bandwidth limit as they are written, response bodies read into a Buffer or a caller's buffer.
 * Bytes of bodies both ways are counted on every WireStats the request names (the client's, an upload's).
 *
 * Retries: only a request marked idempotent is sent again, and only when the node could not be
 * reached or the connection broke (CONNECTION_FAILED) or it answered 500/502/503/504; with
 * exponential backoff (baseDelayMs doubling up to maxDelayMs) for `attempts` tries in all. A refusal
 * (4xx, 507), a wrong fingerprint, a failed handshake and an abort are never retried.
 */
import type { Agent, ClientRequest, IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ColdvaultError, isColdvaultError } from '../../core/index.js';
import type { DirectRequests } from './direct-requests.js';
import { Gate } from './gate.js';
import { requestError } from './pinned-fetch.js';
import { answerError, placeOf, type RequestPlace, retryableStatus } from './remote-errors.js';
import { SLICE_BYTES, type TokenBucket } from './token-bucket.js';

/** Bytes of bodies on the wire (request bodies sent, response bodies received), requests, retries, new connections. */
export interface WireStats {
  requests: number;
  retries: number;
  /** requests that opened a new connection (the others went over a kept-alive one) */
  connections: number;
  sentBytes: number;
  receivedBytes: number;
}

export function newWireStats(): WireStats {
  return { requests: 0, retries: 0, connections: 0, sentBytes: 0, receivedBytes: 0 };
}

export interface RetryPolicy {
  /** tries in all, the first included (default 6) */
  attempts: number;
  /** ms before the first retry, doubling (default 250) */
  baseDelayMs: number;
  /** the longest wait between tries (default 8000) */
  maxDelayMs: number;
}

export interface WireRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** from the node's root: /api/v1/... (components already encoded) */
  path: string;
  /** JSON to send, or bytes as application/octet-stream */
  json?: unknown;
  bytes?: Uint8Array;
  place: RequestPlace;
  idempotent: boolean;
  /** tries in all for this request, when fewer than the policy's */
  attempts?: number;
  /** ms without a byte either way before CONNECTION_FAILED */
  timeoutMs: number;
  /** counters besides the client's own (an upload's) */
  stats?: WireStats;
  /** read a successful answer's body into this buffer from `offset` on (its length is answered) */
  into?: { buf: ArrayBuffer; offset: number };
  /** the largest body accepted (default 64 MiB) */
  maxBody?: number;
  /** the body is a chunk blob: one larger than maxBody (or the room `into`) is CHUNK_CORRUPT */
  blob?: boolean;
  signal?: AbortSignal;
}

export interface WireAnswer {
  status: number;
  /** the body (empty when read `into`) */
  body: Buffer;
  /** bytes of the body */
  length: number;
}

export interface WireOptions {
  /** the node's root, `https://host:port` (no trailing slash) */
  origin: string;
  token: string;
  agent: Agent;
  maxInFlight: number;
  limiter?: TokenBucket;
  retry: RetryPolicy;
  /**
   * connections whose socket reads an answer straight into place and writes a body as it is
   * (direct-requests.ts): every request but those with a body under a bandwidth limit; without:
   * every request through `agent`
   */
  direct?: DirectRequests;
}

const ERROR_BODY_MAX = 64 * 1024;
const DEFAULT_MAX_BODY = 64 * 1024 * 1024;

export class Wire {
  readonly stats = newWireStats();
  private readonly gate: Gate;
  private readonly send: typeof httpRequest;
  private closed = false;

  constructor(private readonly opts: WireOptions) {
    this.gate = new Gate(opts.maxInFlight);
    this.send = opts.origin.startsWith('https:') ? httpsRequest : httpRequest;
  }

  /** The most requests that were in flight at once so far. */
  get peakInFlight(): number {
    return this.gate.peak;
  }

  /** Sends `req` (retried as the header says); an answer >= 400 is thrown as a RemoteError. */
  call(req: WireRequest): Promise<WireAnswer> {
    return this.gate.run(() => this.withRetries(req, encodeBody(req)));
  }

  /** Closes the kept-alive connections; requests in flight and later ones fail with ABORTED. */
  close(): void {
    this.closed = true;
    this.opts.agent.destroy();
    this.opts.direct?.close();
  }

  private async withRetries(req: WireRequest, body: Body | undefined): Promise<WireAnswer> {
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw closedError(req);
      let answer: WireAnswer;
      try {
        answer = await this.once(req, body);
      } catch (err) {
        if (this.closed) throw closedError(req, err);
        if (!this.mayRetry(req, attempt, isColdvaultError(err, 'CONNECTION_FAILED'))) throw err;
        await this.backoff(req, attempt);
        continue;
      }
      if (answer.status < 400) return answer;
      if (!this.mayRetry(req, attempt, retryableStatus(answer.status))) throw answerError(req.place, answer.status, answer.body);
      await this.backoff(req, attempt);
    }
  }

  private mayRetry(req: WireRequest, attempt: number, transient: boolean): boolean {
    return transient && req.idempotent && attempt < Math.min(req.attempts ?? Infinity, this.opts.retry.attempts) && !req.signal?.aborted;
  }

  private async backoff(req: WireRequest, attempt: number): Promise<void> {
    this.count(req, 'retries', 1);
    const { baseDelayMs, maxDelayMs } = this.opts.retry;
    try {
      await sleep(Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)), undefined, { signal: req.signal });
    } catch (err) {
      throw new ColdvaultError('ABORTED', `${req.place.doing}: aborted`, { cause: err });
    }
  }

  /** One try: resolves with the answer (any status); CONNECTION_FAILED, TLS_FAILED, FINGERPRINT_MISMATCH, ABORTED otherwise. */
  private once(req: WireRequest, body: Body | undefined): Promise<WireAnswer> {
    // over the agent only what the bandwidth limit meters slice by slice (a body under a limit)
    if (this.opts.direct && !(body && this.opts.limiter)) return this.onceDirect(req, this.opts.direct, body);
    const href = `${this.opts.origin}${req.path}`;
    const where = `${req.method} ${href}`;
    this.count(req, 'requests', 1);
    return new Promise<WireAnswer>((resolve, reject) => {
      const fail = (err: unknown): void => reject(requestError(err as Error, href, where));
      const options = { method: req.method, headers: this.headers(body), agent: this.opts.agent, signal: req.signal, timeout: req.timeoutMs };
      const out = this.send(href, options, (res) => {
        this.read(req, res).then(resolve, fail);
      });
      out.setTimeout(req.timeoutMs); // also on a socket the agent reuses or hands over after its handshake
      out.once('timeout', () => out.destroy(new ColdvaultError('CONNECTION_FAILED', `${where}: no data for ${req.timeoutMs / 1000} s`)));
      out.once('error', fail);
      out.once('socket', () => {
        if (!out.reusedSocket) this.count(req, 'connections', 1);
      });
      this.write(req, out, body?.data).catch((err: unknown) => out.destroy(err as Error));
    });
  }

  /** One try over a direct connection (the same answers and failures as `once`). */
  private async onceDirect(req: WireRequest, direct: DirectRequests, body?: Body): Promise<WireAnswer> {
    const href = `${this.opts.origin}${req.path}`;
    this.count(req, 'requests', 1);
    if (body) this.count(req, 'sentBytes', body.data.length);
    try {
      const answer = await direct.send({
        method: req.method,
        body,
        path: req.path,
        token: this.opts.token,
        into: req.into,
        maxBody: req.maxBody ?? DEFAULT_MAX_BODY,
        errorBodyMax: ERROR_BODY_MAX,
        timeoutMs: req.timeoutMs,
        signal: req.signal,
        onBytes: (n) => this.count(req, 'receivedBytes', n),
        onConnect: () => this.count(req, 'connections', 1),
        tooLarge: (status, max) => tooLarge(req, status, max),
      });
      return { status: answer.status, body: answer.body, length: answer.length };
    } catch (err) {
      throw requestError(err as Error, href, `${req.method} ${href}`);
    }
  }

  private headers(body: Body | undefined): Record<string, string> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.opts.token}` };
    if (body) Object.assign(headers, { 'content-type': body.type, 'content-length': String(body.data.length) });
    return headers;
  }

  /** Writes the body: at once without a limit, else slice by slice as the bucket lets it. */
  private async write(req: WireRequest, out: ClientRequest, data: Uint8Array | undefined): Promise<void> {
    if (!data?.length) {
      out.end();
      return;
    }
    const limiter = this.opts.limiter;
    if (!limiter) {
      this.count(req, 'sentBytes', data.length);
      out.end(data);
      return;
    }
    for (let at = 0; at < data.length && !out.destroyed; at += SLICE_BYTES) {
      const slice = data.subarray(at, at + SLICE_BYTES);
      await limiter.take(slice.length);
      this.count(req, 'sentBytes', slice.length);
      if (!out.write(slice)) await drained(out);
    }
    out.end();
  }

  /**
   * Reads the answer's body: into the caller's buffer (a chunk) or collected. 'data' listeners, not
   * `for await`: a chunk comes in 16 KiB pieces (one per TLS record), and a promise per piece was a
   * measurable share of a remote restore's CPU; `finished` still turns a body broken off into an error.
   */
  private async read(req: WireRequest, res: IncomingMessage): Promise<WireAnswer> {
    const status = res.statusCode ?? 0;
    const into = status < 400 ? req.into : undefined;
    const max = into ? into.buf.byteLength - into.offset : status < 400 ? (req.maxBody ?? DEFAULT_MAX_BODY) : ERROR_BODY_MAX;
    const target = into ? Buffer.from(into.buf, into.offset, max) : undefined;
    const pieces: Buffer[] = [];
    let length = 0;
    let overflow: ColdvaultError | undefined;
    res.on('data', (piece: Buffer) => {
      this.count(req, 'receivedBytes', piece.length);
      if (length + piece.length > max) {
        overflow ??= tooLarge(req, status, max);
        res.destroy(overflow);
        return;
      }
      if (target) piece.copy(target, length);
      else pieces.push(piece);
      length += piece.length;
    });
    try {
      await finished(res);
    } catch (err) {
      throw overflow ?? err;
    }
    if (overflow) throw overflow;
    return { status, body: into ? Buffer.alloc(0) : Buffer.concat(pieces, length), length };
  }

  private count(req: WireRequest, field: keyof WireStats, n: number): void {
    this.stats[field] += n;
    if (req.stats) req.stats[field] += n;
  }
}

interface Body {
  type: string;
  data: Uint8Array;
}

function encodeBody(req: WireRequest): Body | undefined {
  if (req.bytes) return { type: 'application/octet-stream', data: req.bytes };
  if (req.json !== undefined) return { type: 'application/json', data: Buffer.from(JSON.stringify(req.json)) };
  return undefined;
}

/** Resolves when `out` may take more (or is gone: the request's own error handler reports why). */
function drained(out: ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      out.off('drain', done).off('close', done);
      resolve();
    };
    out.once('drain', done).once('close', done);
  });
}

function closedError(req: WireRequest, cause?: unknown): ColdvaultError {
  return new ColdvaultError('ABORTED', `${req.place.doing} ${placeOf(req.place)}: the client was closed`, { cause });
}

function tooLarge(req: WireRequest, status: number, max: number): ColdvaultError {
  const what = `${req.place.doing} in datastore '${req.place.store}' on node ${req.place.node}`;
  if (req.blob && status < 400) return new ColdvaultError('CHUNK_CORRUPT', `${what}: the answer has more than ${max} bytes, more than any chunk blob`);
  return new ColdvaultError('REMOTE_REFUSED', `${what}: the answer has more than ${max} bytes (HTTP ${status})`);
}
