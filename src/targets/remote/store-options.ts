/**
 * What a RemoteStore is made from, checked before any connection: the node's URL (https:// with its
 * pinned fingerprint; plain http:// only to a loopback address, where nothing crosses a network), a
 * token, a datastore name, and the limits. Every refusal is CONFIG_INVALID naming the setting.
 */
import { Agent as HttpAgent } from 'node:http';
import { ColdvaultError, isLoopbackHost, parseFingerprint } from '../../core/index.js';
import { DirectRequests } from './direct-requests.js';
import { PinnedAgent } from './pinned-agent.js';
import { TokenBucket } from './token-bucket.js';
import type { RetryPolicy } from './wire.js';

export interface RemoteStoreTimeouts {
  /** ms to connect and finish the TLS handshake (default 10 000, or idleMs when that is shorter) */
  connectMs?: number;
  /** ms without a byte either way before a request fails with CONNECTION_FAILED (default 60 000) */
  idleMs?: number;
  /** ms a finish may take: the node checks every chunk once more before it publishes (default 1 800 000) */
  finishMs?: number;
}

export interface RemoteStoreOptions {
  /** the node: `https://HOST:PORT` (as `coldvault serve` prints it), or `http://127.0.0.1:PORT` on loopback */
  url: string;
  /** SHA-256 fingerprint of the node's certificate (`coldvault cert fingerprint` there); required for https */
  fingerprint?: string;
  /** the API token that node issued for this one (`coldvault token create NAME --role backup --store STORE`) */
  token: string;
  /** the datastore's name in that node's config `datastores` */
  store: string;
  /** requests in flight at once (default 8): enough that the link, not a round trip per chunk, is the limit */
  maxInFlight?: number;
  /** MiB/s of request bodies (the job's `bwlimit`); none when absent or 0 */
  bwlimitMBps?: number;
  /** a bucket shared with other clients (several pushes under one limit); takes the place of bwlimitMBps */
  limiter?: TokenBucket;
  timeouts?: RemoteStoreTimeouts;
  retry?: Partial<RetryPolicy>;
}

export interface ResolvedOptions {
  /** `https://host:port` without a trailing slash, for request URLs */
  origin: string;
  /** `https://host:port/`, for messages */
  node: string;
  token: string;
  store: string;
  maxInFlight: number;
  limiter?: TokenBucket;
  timeouts: Required<RemoteStoreTimeouts>;
  retry: RetryPolicy;
  agent: HttpAgent;
  /** requests go over these (answers read straight into place, bodies written as they are); bodies under a bandwidth limit over `agent` */
  direct: DirectRequests;
}

/** free sockets are closed after 30 s: before the node's keep-alive timeout (72 s) could close one under a request */
const IDLE_SOCKET_MS = 30_000;
const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 250, maxDelayMs: 8000 };

export function resolveOptions(opts: RemoteStoreOptions): ResolvedOptions {
  const url = nodeUrl(opts);
  const maxInFlight = positiveInt(opts.maxInFlight ?? 8, 'maxInFlight');
  // connecting is part of a request: it may not wait longer than the request may go without a byte
  const idleMs = opts.timeouts?.idleMs ?? 60_000;
  const timeouts = { connectMs: Math.min(10_000, idleMs), idleMs, finishMs: 1_800_000, ...opts.timeouts };
  const fingerprint = url.protocol === 'https:' ? parseFingerprint(opts.fingerprint ?? '', `the fingerprint of node ${url.origin}/`) : undefined;
  return {
    origin: url.origin,
    node: `${url.origin}/`,
    token: checkToken(opts.token, url),
    store: checkStoreName(opts.store),
    maxInFlight,
    limiter: opts.limiter ?? limiterOf(opts.bwlimitMBps),
    timeouts,
    retry: { ...DEFAULT_RETRY, ...opts.retry },
    agent: agentFor(url, fingerprint, maxInFlight, timeouts.connectMs),
    direct: new DirectRequests({ url, fingerprint, connectTimeoutMs: timeouts.connectMs, idleMs: IDLE_SOCKET_MS }),
  };
}

/** Whether `host` (a URL's hostname, IPv6 in brackets or not) is this machine's loopback. */

function nodeUrl(opts: RemoteStoreOptions): URL {
  let url: URL;
  try {
    url = new URL(opts.url);
  } catch {
    throw invalid(`the node URL '${opts.url}' does not parse: expected https://HOST:PORT`);
  }
  if (url.pathname !== '/' || url.search || url.hash || url.username) {
    throw invalid(`the node URL '${opts.url}' must be just https://HOST:PORT (no path, query or user)`);
  }
  if (url.protocol === 'https:') {
    if (!opts.fingerprint)
      throw invalid(`node ${url.origin}/: https needs the fingerprint of its certificate to pin ('coldvault cert fingerprint' on that node)`);
    return url;
  }
  if (url.protocol !== 'http:') throw invalid(`the node URL '${opts.url}' must start with https://`);
  if (opts.fingerprint) throw invalid(`node ${url.origin}/: a fingerprint pins a TLS certificate; use https://`);
  if (!isLoopbackHost(url.hostname)) {
    throw invalid(
      `node ${url.origin}/: plain http is allowed only to a loopback address (the token and the backups would cross the network in the clear); use https:// and pin the node's fingerprint`,
    );
  }
  return url;
}

function agentFor(url: URL, fingerprint: string | undefined, maxInFlight: number, connectMs: number): HttpAgent {
  if (url.protocol === 'http:') return new HttpAgent({ keepAlive: true, maxSockets: maxInFlight, timeout: IDLE_SOCKET_MS });
  return new PinnedAgent({
    fingerprint: fingerprint ?? '',
    maxSockets: maxInFlight,
    connectTimeoutMs: connectMs,
  });
}

function limiterOf(mibPerSecond: number | undefined): TokenBucket | undefined {
  if (mibPerSecond === undefined || mibPerSecond === 0) return undefined;
  if (!(mibPerSecond > 0) || !Number.isFinite(mibPerSecond)) throw invalid(`bwlimit ${mibPerSecond}: expected a positive number of MiB/s (0: no limit)`);
  return TokenBucket.mibPerSecond(mibPerSecond);
}

function checkToken(token: string, url: URL): string {
  if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token)) {
    throw invalid(`the API token for node ${url.origin}/ is empty or holds spaces or control characters`);
  }
  return token;
}

function checkStoreName(store: string): string {
  if (typeof store !== 'string' || store.length === 0 || store.length > 128 || /[/\\\x00-\x1f]/.test(store)) {
    throw invalid(`datastore name '${String(store)}': expected the name of a datastore in that node's config (1 to 128 characters, no '/')`);
  }
  return store;
}

function positiveInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw invalid(`${name} ${value}: expected a whole number of at least 1`);
  return value;
}

function invalid(message: string): ColdvaultError {
  return new ColdvaultError('CONFIG_INVALID', message);
}
