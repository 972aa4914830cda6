/**
 * Where and how the server listens. `listen` is HOST:PORT (`127.0.0.1:8080` by default, `[::1]:8080`
 * for IPv6). Plain HTTP only on loopback (127.0.0.0/8, ::1, localhost): beyond it `serve` speaks HTTPS,
 * with `tls: {cert, key}` (PEM files) when configured, else with the self-signed certificate it makes
 * in its state dir (tls/); `allowInsecureListen: true` says plain HTTP beyond loopback on purpose.
 * `tls: "auto"` makes serve use its own certificate on loopback too (tlsChoice has the whole rule).
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { ColdvaultError, isLoopbackHost } from '../core/index.js';
import type { ServerConfig } from './deps.js';
import { serveCertificate, type ServeCertificate, type TlsSetting } from './tls/index.js';

export const DEFAULT_LISTEN = '127.0.0.1:8080';

export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new ColdvaultError('CONFIG_INVALID', `listen '${value}': expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Loopback, where plain HTTP may listen (core's rule, shared with the remote store client). */
export const isLoopback = isLoopbackHost;

/** Whether serve speaks HTTPS with the configured files, HTTPS with its own certificate, or plain HTTP on `host`. */
export type TlsChoice = 'configured' | 'generated' | 'plain';

/**
 * The rule: `tls: {cert, key}` -> those files, everywhere; `tls: "auto"` -> serve's own certificate,
 * everywhere; no `tls` -> plain HTTP on loopback, beyond it serve's own certificate, or plain HTTP
 * when `allowInsecureListen` is true.
 */
export function tlsChoice(host: string, config: { tls?: TlsSetting; allowInsecureListen?: boolean }): TlsChoice {
  if (typeof config.tls === 'object') return 'configured';
  if (config.tls === 'auto') return 'generated';
  return isLoopback(host) || config.allowInsecureListen === true ? 'plain' : 'generated';
}

/** The TLS files serve uses on `host` (checked; serve's own made now when missing), or undefined for plain HTTP. */
export async function serverTls(
  host: string,
  config: { tls?: TlsSetting; allowInsecureListen?: boolean; stateDir: string; node: string },
): Promise<ServeCertificate | undefined> {
  return tlsChoice(host, config) === 'plain' ? undefined : serveCertificate(config);
}

/** Throws CONFIG_INVALID for plain HTTP beyond loopback unless allowInsecureListen is set. */
export function checkListen(host: string, config: Pick<ServerConfig, 'tls' | 'allowInsecureListen'>): void {
  if (isLoopback(host) || config.tls || config.allowInsecureListen === true) return;
  throw new ColdvaultError(
    'CONFIG_INVALID',
    `refusing to listen on '${host}' without TLS: the admin password and API tokens would cross the network in the clear. ` +
      `Set "tls": {"cert": "/path/cert.pem", "key": "/path/key.pem"} in the config file, listen on 127.0.0.1 (behind an HTTPS proxy or an SSH tunnel), ` +
      `or set "allowInsecureListen": true if you really mean it`,
  );
}

export function readTls(tls: { cert: string; key: string }): { cert: Buffer; key: Buffer } {
  try {
    return { cert: readFileSync(tls.cert), key: readFileSync(tls.key) };
  } catch (err) {
    throw new ColdvaultError('CONFIG_INVALID', `reading the TLS files (tls.cert '${tls.cert}', tls.key '${tls.key}') failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Checks the address, listens, and returns the server's URL. */
export async function startServer(
  app: FastifyInstance,
  host: string,
  port: number,
  config: Pick<ServerConfig, 'tls' | 'allowInsecureListen'>,
): Promise<string> {
  checkListen(host, config);
  await app.listen({ host, port });
  const address = app.server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  return `${config.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${actual}/`;
}
