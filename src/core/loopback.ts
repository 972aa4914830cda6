/**
 * Loopback addresses: where plain HTTP is allowed (serve's listen rule, the remote store client's URL
 * rule). `localhost`, `::1` (also in brackets, as a URL's host has it) and 127.0.0.0/8.
 */
import { isIP } from 'node:net';

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  if (bare === 'localhost' || bare === '::1') return true;
  return isIP(bare) === 4 && bare.startsWith('127.');
}
