/**
 * PinnedAgent: an https.Agent (keep-alive) that talks only to the server whose certificate has the
 * pinned SHA-256 fingerprint. Each new connection is handed to the HTTP client only after its
 * handshake was checked (pinnedHandshake), so no request byte (and no token) ever reaches another
 * server. TLS sessions are not resumed: every connection shows its certificate. One agent per node.
 */
import { Agent, type RequestOptions } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { parseFingerprint } from '../../core/index.js';
import { handshake, originOf, pinnedHandshake } from './handshake.js';

export interface PinnedAgentOptions {
  /** the SHA-256 fingerprint the node's certificate must have, as `coldvault cert fingerprint` prints it (AB:CD:...) */
  fingerprint: string;
  /** connections to the node at once, i.e. requests in flight (default 8) */
  maxSockets?: number;
  /** ms to connect and finish the handshake (default 10 000) */
  connectTimeoutMs?: number;
  /** ms an idle kept-alive connection stays open (default 30 000, below the server's keep-alive timeout) */
  idleSocketMs?: number;
}

export class PinnedAgent extends Agent {
  /** canonical (`AB:CD:...`) */
  readonly fingerprint: string;
  private readonly connectTimeoutMs: number;

  constructor(opts: PinnedAgentOptions) {
    super({
      keepAlive: true,
      maxSockets: opts.maxSockets ?? 8,
      timeout: opts.idleSocketMs ?? 30_000,
      maxCachedSessions: 0,
      // the fingerprint is the trust: no CA, no host name (checked in createConnection instead)
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    this.fingerprint = parseFingerprint(opts.fingerprint, 'pinned fingerprint');
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  }

  /** Connects; calls back with the socket once its certificate is the pinned one, else with the error. */
  override createConnection(options: RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    const socket = super.createConnection(options) as TLSSocket;
    pinnedHandshake(socket, originOf(options), this.fingerprint, this.connectTimeoutMs).then(
      () => callback?.(null, socket),
      (err: unknown) => callback?.(err as Error, socket),
    );
    return undefined;
  }
}

/**
 * The SHA-256 fingerprint of the certificate that `url` (https://host:port/) presents, trusting
 * nothing: to show an admin what a node presents, or to compare before pinning it.
 * CONNECTION_FAILED / TLS_FAILED naming the URL.
 */
export async function presentedFingerprint(url: string | URL, timeoutMs = 10_000): Promise<string> {
  const { hostname, port } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  const socket = connect({ host, port: Number(port || 443), rejectUnauthorized: false, checkServerIdentity: () => undefined });
  try {
    return await handshake(socket, originOf({ host, port: Number(port || 443) }), timeoutMs);
  } finally {
    socket.destroy();
  }
}
