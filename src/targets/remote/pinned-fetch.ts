/**
 * pinnedFetch: one HTTP request to a node through its PinnedAgent, answered as a standard `Response`
 * (status, headers, streamed body). Failures are typed and name the method and URL:
 * FINGERPRINT_MISMATCH (FingerprintMismatchError: expected and presented fingerprints), TLS_FAILED,
 * CONNECTION_FAILED (refused, unreachable, reset, no data for `idleTimeoutMs`, a body that broke off),
 * ABORTED (the signal). An HTTP error status is a Response like any other, not a throw.
 */
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { PassThrough, pipeline, Readable } from 'node:stream';
import { ColdvaultError, describeError, isColdvaultError } from '../../core/index.js';
import { FingerprintMismatchError } from './handshake.js';
import type { PinnedAgent } from './pinned-agent.js';

export interface PinnedRequestInit {
  /** the node's agent: its pinned fingerprint and kept-alive connections */
  agent: PinnedAgent;
  method?: string;
  headers?: Record<string, string>;
  /** a stream is sent chunked; a stream's own error ends the request with that error */
  body?: string | Uint8Array | Readable;
  signal?: AbortSignal;
  /** ms without a byte either way before CONNECTION_FAILED (default 60 000); also while a response body is not read */
  idleTimeoutMs?: number;
}

export function pinnedFetch(url: string | URL, init: PinnedRequestInit): Promise<Response> {
  const target = new URL(url);
  const method = (init.method ?? 'GET').toUpperCase();
  const where = `${method} ${target.href}`;
  if (target.protocol !== 'https:') {
    return Promise.reject(new ColdvaultError('CONFIG_INVALID', `${where}: a node's URL must be https:// (its certificate is pinned)`));
  }
  return new Promise<Response>((resolve, reject) => {
    const req = request(target, { method, headers: headersOf(init), agent: init.agent, signal: init.signal }, (res) => resolve(toResponse(res, method, where)));
    const idleMs = init.idleTimeoutMs ?? 60_000;
    req.setTimeout(idleMs, () => req.destroy(new ColdvaultError('CONNECTION_FAILED', `${where}: no data for ${idleMs / 1000} s`)));
    req.once('error', (err) => reject(requestError(err, target.href, where)));
    send(req, init.body);
  });
}

function headersOf(init: PinnedRequestInit): Record<string, string> {
  const headers = { ...init.headers };
  const { body } = init;
  if ((typeof body === 'string' || body instanceof Uint8Array) && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
    headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  }
  return headers;
}

function send(req: ReturnType<typeof request>, body: PinnedRequestInit['body']): void {
  if (body instanceof Readable)
    pipeline(body, req, () => undefined); // an error destroys req, whose 'error' rejects
  else req.end(body);
}

/** A failed request as a typed error naming `where` (FINGERPRINT_MISMATCH, CONNECTION_FAILED, ABORTED, or the ColdvaultError it was). */
export function requestError(err: Error, url: string, where: string): ColdvaultError {
  if (err instanceof FingerprintMismatchError) return new FingerprintMismatchError(url, err.expected, err.presented);
  if (isColdvaultError(err)) return err.message.startsWith(where) ? err : new ColdvaultError(err.code, `${where}: ${err.message}`, { cause: err });
  if (err.name === 'AbortError') return new ColdvaultError('ABORTED', `${where}: aborted`, { cause: err });
  return new ColdvaultError('CONNECTION_FAILED', `${where} failed: ${describeError(err)}`, { cause: err });
}

function toResponse(res: IncomingMessage, method: string, where: string): Response {
  const status = res.statusCode ?? 0;
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) for (const one of [value ?? []].flat()) headers.append(name, one);
  if (method === 'HEAD' || status === 204 || status === 304) {
    res.resume();
    return new Response(null, { status, headers });
  }
  const body = new PassThrough();
  res.once('error', (err) => body.destroy(new ColdvaultError('CONNECTION_FAILED', `${where}: the response broke off: ${describeError(err)}`, { cause: err })));
  res.pipe(body);
  const stream = Readable.toWeb(body) as unknown as ReadableStream<Uint8Array>; // node:stream/web's type: the global one's twin
  return new Response(stream, { status, statusText: res.statusMessage, headers });
}
