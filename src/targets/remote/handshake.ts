/**
 * One TLS handshake with a node, checked against the pinned fingerprint before a byte of a request is
 * written: the certificate the node presents must have exactly that SHA-256 fingerprint (constant-time
 * compare); no CA and no host name are checked, as with Proxmox Backup Server remotes.
 */
import type { TLSSocket } from 'node:tls';
import { ColdvaultError, describeError, sameFingerprint } from '../../core/index.js';

/** A node presented another certificate than the pinned one. Permanent: retrying cannot help. */
export class FingerprintMismatchError extends ColdvaultError {
  constructor(
    readonly url: string,
    readonly expected: string,
    readonly presented: string,
  ) {
    super(
      'FINGERPRINT_MISMATCH',
      `the TLS certificate of ${url} has the SHA-256 fingerprint ${presented}, but ${expected} is pinned for it: refusing to talk to it ` +
        `(another server answers there, or its certificate was replaced: compare with 'coldvault cert fingerprint' on that node)`,
    );
    this.name = 'FingerprintMismatchError';
  }
}

/** `https://host:port/` of a connection's options, for messages. */
export function originOf(options: { host?: string | null; hostname?: string | null; port?: number | string | null }): string {
  const host = options.hostname ?? options.host ?? 'localhost';
  return `https://${host.includes(':') ? `[${host}]` : host}:${options.port ?? 443}/`;
}

/**
 * Resolves with the fingerprint the node presented once the handshake is done (the socket is then ready
 * for requests); rejects with CONNECTION_FAILED (refused, unreachable, no handshake within `timeoutMs`)
 * or TLS_FAILED (the peer broke the handshake off or spoke no TLS), naming `url`. The socket is
 * destroyed on failure.
 */
export function handshake(socket: TLSSocket, url: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let connected = false;
    let settled = false;
    // stays on the socket after the handshake (settled: a no-op), so an error before the HTTP client
    // has put its own listener on is never an unhandled 'error' event; the client still gets it
    const fail = (err: Error, timedOut = false): void => {
      if (settled) return;
      cleanup();
      socket.destroy();
      reject(connected && !timedOut ? tlsFailed(url, err) : connectionFailed(url, err));
    };
    const onConnect = (): void => {
      connected = true;
    };
    // silence (a cut link, a stalled peer) may pass: CONNECTION_FAILED, not TLS_FAILED
    const onTimeout = (): void => fail(new Error(`no answer within ${timeoutMs / 1000} s`), true);
    const onSecure = (): void => {
      cleanup();
      resolve(socket.getPeerCertificate().fingerprint256 ?? 'none');
    };
    const cleanup = (): void => {
      settled = true;
      socket.setTimeout(0);
      socket.off('connect', onConnect).off('secureConnect', onSecure).off('timeout', onTimeout);
    };
    socket.setTimeout(timeoutMs);
    socket.once('connect', onConnect).once('secureConnect', onSecure).on('error', fail).once('timeout', onTimeout);
  });
}

/** Resolves when the node's certificate is the pinned one; FingerprintMismatchError (socket destroyed) otherwise. */
export async function pinnedHandshake(socket: TLSSocket, url: string, expected: string, timeoutMs: number): Promise<void> {
  const presented = await handshake(socket, url, timeoutMs);
  if (presented !== 'none' && sameFingerprint(presented, expected)) return;
  socket.destroy();
  throw new FingerprintMismatchError(url, expected, presented);
}

export function tlsFailed(url: string, err: unknown): ColdvaultError {
  return new ColdvaultError('TLS_FAILED', `the TLS handshake with ${url} failed: ${describeError(err)} (does a coldvault serve speak HTTPS there?)`, {
    cause: err,
  });
}

export function connectionFailed(url: string, err: unknown): ColdvaultError {
  return new ColdvaultError('CONNECTION_FAILED', `connecting to ${url} failed: ${describeError(err)}`, { cause: err });
}
