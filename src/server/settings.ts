/**
 * The server's tunables from the config, checked: session lifetimes, login limits and the reverse
 * proxies to trust. A wrong value is CONFIG_INVALID naming the key, never silently a default.
 */
import { isIP } from 'node:net';
import { ColdvaultError } from '../core/index.js';
import { DEFAULT_LOGIN_LIMITS, type LoginLimits, type SessionLifetime } from './auth/index.js';
import { SESSION_IDLE_HOURS, SESSION_MAX_HOURS, UPLOAD_IDLE_SECONDS, type ServerConfig } from './deps.js';

const HOUR = 3_600_000;

function positive(value: unknown, key: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    throw new ColdvaultError('CONFIG_INVALID', `config key ${key}: expected a number above 0, got ${JSON.stringify(value)}`);
  return value;
}

function whole(value: unknown, key: string, fallback: number): number {
  const n = positive(value, key, fallback);
  if (!Number.isInteger(n)) throw new ColdvaultError('CONFIG_INVALID', `config key ${key}: expected a whole number, got ${n}`);
  return n;
}

/** Milliseconds without a request after which an upload is aborted (config uploadIdleSeconds). */
export function uploadIdleMs(config: ServerConfig): number {
  return positive(config.uploadIdleSeconds, 'uploadIdleSeconds', UPLOAD_IDLE_SECONDS) * 1000;
}

export function sessionLifetime(config: ServerConfig): SessionLifetime {
  return {
    idleMs: positive(config.sessionIdleHours, 'sessionIdleHours', SESSION_IDLE_HOURS) * HOUR,
    maxMs: positive(config.sessionMaxHours, 'sessionMaxHours', SESSION_MAX_HOURS) * HOUR,
  };
}

export function loginLimits(config: ServerConfig): LoginLimits {
  const given = config.loginLimit ?? {};
  const unknown = Object.keys(given).filter((k) => !['perAddress', 'global', 'windowSeconds'].includes(k));
  if (unknown.length > 0)
    throw new ColdvaultError('CONFIG_INVALID', `config key loginLimit: unknown key(s) ${unknown.join(', ')} (known: perAddress, global, windowSeconds)`);
  return {
    ...DEFAULT_LOGIN_LIMITS,
    perAddress: whole(given.perAddress, 'loginLimit.perAddress', DEFAULT_LOGIN_LIMITS.perAddress),
    global: whole(given.global, 'loginLimit.global', DEFAULT_LOGIN_LIMITS.global),
    windowMs: whole(given.windowSeconds, 'loginLimit.windowSeconds', DEFAULT_LOGIN_LIMITS.windowMs / 1000) * 1000,
  };
}

/** Fastify's `trustProxy`: false, true, or the proxies' addresses / CIDRs. */
export function trustProxy(config: ServerConfig): boolean | string[] {
  const value: unknown = config.trustProxy ?? false;
  if (typeof value === 'boolean') return value;
  if (Array.isArray(value) && value.length > 0 && value.every(isAddressOrCidr)) return value as string[];
  throw new ColdvaultError(
    'CONFIG_INVALID',
    `config key trustProxy: expected false, true or a list of proxy addresses (e.g. ["127.0.0.1", "10.0.0.0/8"]), got ${JSON.stringify(value)}`,
  );
}

function isAddressOrCidr(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const [address = '', bits, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}
