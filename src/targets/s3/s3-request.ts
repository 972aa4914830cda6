/**
 * One signed S3 request, sent again when it may pass (S3's object operations are idempotent: a PUT of
 * the same bytes, a GET, a HEAD, a DELETE), with exponential backoff and full jitter (AWS's advice:
 * sleep a random time up to min(cap, base x 2^attempt)), over keep-alive connections whose number
 * bounds the requests in flight. The answer's body lands in one buffer of its Content-Length (or
 * the caller's buffer), not a list of pieces joined at the end.
 */
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { ColdvaultError } from '../../core/index.js';
import { answerError, retriedFailure, retriedStatus, S3Error } from './s3-errors.js';
import { amzDate, authorization, canonicalQuery, type Credentials, EMPTY_SHA256, sha256Hex, UNSIGNED_PAYLOAD } from './sigv4.js';

export interface RetryPolicy {
  /** sends in all, the first included */
  attempts: number;
  baseMs: number;
  capMs: number;
}

export interface S3Connection {
  endpoint: URL;
  region: string;
  credentials: Credentials;
  retry: RetryPolicy;
  /** a request without an answer for this long is given up (and retried) */
  timeoutMs: number;
  agent: http.Agent;
}

export interface S3Call {
  method: 'GET' | 'PUT' | 'HEAD' | 'DELETE' | 'POST';
  /** encoded path, from uriPath */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** sign the body's SHA-256 (small bodies: manifests, indexes, locks); chunk blobs go unsigned (their name is their hash) */
  signBody?: boolean;
  /** the answer's body lands here when it fits (a pooled chunk buffer) */
  into?: Uint8Array;
  /** for messages: "PUT of chunk ab12.. in s3://bucket/prefix" */
  doing: string;
  /** statuses that are answers, not errors (404 for a HEAD that asks whether something exists) */
  accept?: number[];
  signal?: AbortSignal;
}

export interface S3Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseMs: 200, capMs: 10_000 };

export function makeAgent(endpoint: URL, maxSockets: number): http.Agent {
  const options = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' as const };
  return endpoint.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
}

/** Sends `call`, retried while it may pass; the answer, or an S3Error naming what was asked. */
export async function s3Request(conn: S3Connection, call: S3Call): Promise<S3Answer> {
  for (let attempt = 1; ; attempt++) {
    let answer: S3Answer;
    try {
      answer = await sendOnce(conn, call);
    } catch (err) {
      if (call.signal?.aborted) throw new ColdvaultError('ABORTED', `${call.doing}: aborted`, { cause: err });
      if (!retriedFailure(err) || attempt >= conn.retry.attempts) throw unreachable(conn, call, err, attempt);
      await backoff(conn.retry, attempt, call.signal);
      continue;
    }
    if ((answer.status >= 200 && answer.status < 300) || call.accept?.includes(answer.status)) return answer;
    const error = answerError(call.doing, answer.status, answer.body.toString('utf8'));
    if (!retriedStatus(answer.status, error.s3Code) || attempt >= conn.retry.attempts) throw error;
    await backoff(conn.retry, attempt, call.signal);
  }
}

async function backoff(policy: RetryPolicy, attempt: number, signal?: AbortSignal): Promise<void> {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** (attempt - 1));
  await sleep(Math.random() * ceiling, undefined, { signal }).catch(() => undefined);
}

function unreachable(conn: S3Connection, call: S3Call, err: unknown, attempts: number): S3Error {
  const why = err instanceof Error ? err.message : String(err);
  return new S3Error('S3_FAILED', `${call.doing} failed: ${conn.endpoint.origin} did not answer (${why}), ${attempts} attempt(s)`, 0, 'NoAnswer', {
    cause: err,
  });
}

function sendOnce(conn: S3Connection, call: S3Call): Promise<S3Answer> {
  const body = call.body;
  const payloadHash = body === undefined || body.length === 0 ? EMPTY_SHA256 : call.signBody ? sha256Hex(body) : UNSIGNED_PAYLOAD;
  const query = call.query ?? {};
  const headers: Record<string, string> = {
    ...call.headers,
    host: conn.endpoint.host,
    'x-amz-date': amzDate(new Date()),
    'x-amz-content-sha256': payloadHash,
  };
  if (body !== undefined) headers['content-length'] = String(body.length);
  headers.authorization = authorization(
    { method: call.method, path: call.path, query, headers, payloadHash },
    conn.credentials,
    conn.region,
    new Date(dateOf(headers)),
  );
  const qs = canonicalQuery(query);
  const transport = conn.endpoint.protocol === 'https:' ? https : http;
  return new Promise<S3Answer>((resolve, reject) => {
    const req = transport.request(
      {
        host: conn.endpoint.hostname,
        port: conn.endpoint.port,
        method: call.method,
        path: qs ? `${call.path}?${qs}` : call.path,
        headers,
        agent: conn.agent,
        signal: call.signal,
      },
      (res) => collect(res, call, resolve, reject),
    );
    req.setTimeout(conn.timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${conn.timeoutMs} ms`), { code: 'S3_TIMEOUT' })));
    req.on('error', reject);
    req.end(body === undefined || body.length === 0 ? undefined : body);
  });
}

/** x-amz-date back to the Date it was made from (so the signature and the header agree to the second) */
function dateOf(headers: Record<string, string>): string {
  const d = headers['x-amz-date'] ?? '';
  return `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(9, 11)}:${d.slice(11, 13)}:${d.slice(13, 15)}Z`;
}

function collect(res: http.IncomingMessage, call: S3Call, resolve: (a: S3Answer) => void, reject: (e: unknown) => void): void {
  const length = Number(res.headers['content-length'] ?? Number.NaN);
  const ok = res.statusCode !== undefined && res.statusCode < 300;
  const target = ok && call.into && Number.isSafeInteger(length) && length <= call.into.length ? call.into : undefined;
  const pieces: Buffer[] = [];
  let received = 0;
  res.on('data', (piece: Buffer) => {
    if (target) target.set(piece, received);
    else pieces.push(piece);
    received += piece.length;
  });
  res.on('error', reject);
  res.on('aborted', () => reject(Object.assign(new Error('the answer was cut off'), { code: 'ECONNRESET' })));
  res.on('end', () => {
    if (Number.isSafeInteger(length) && received !== length && call.method !== 'HEAD') {
      reject(Object.assign(new Error(`the answer had ${received} of its ${length} bytes`), { code: 'ECONNRESET' }));
      return;
    }
    const body = target ? Buffer.from(target.buffer, target.byteOffset, received) : Buffer.concat(pieces, received);
    resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
  });
}
