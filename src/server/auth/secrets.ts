/**
 * Secrets: random tokens (32 bytes, base64url), their SHA-256 (enough for random tokens: nothing to
 * brute-force), and scrypt for the admin password (node:crypto, 16-byte random salt, N=2^15 r=8 p=1),
 * stored as `scrypt$N$r$p$salt$hash`. Comparisons are constant-time.
 *
 * scrypt runs on libuv's thread pool (4 threads), which a backup's file reads and writes use too: a
 * burst of logins hashed all at once would hold every thread for a while and stall the backup. So
 * hashes run one at a time, in order; when `HASH_QUEUE_LIMIT` are already waiting, a new one is
 * refused at once with 429 RATE_LIMITED instead of queueing (bench/login-burst.mjs measures it).
 */
import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { ApiError } from '../errors.js';

const KEY_LENGTH = 32;
const PARAMS = { N: 32768, r: 8, p: 1 };

export function randomToken(prefix = ''): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export const HASH_QUEUE_LIMIT = 8;
let queueTail: Promise<unknown> = Promise.resolve();
let queued = 0;

/** Runs `hash` after every hash queued before it; refuses when the queue is full. */
function oneAtATime<T>(hash: () => Promise<T>): Promise<T> {
  if (queued >= HASH_QUEUE_LIMIT) {
    return Promise.reject(new ApiError('RATE_LIMITED', `${queued} passwords are waiting to be checked; try again in a moment`, { retryAfterSeconds: 1 }));
  }
  queued++;
  const run = queueTail.then(hash).finally(() => {
    queued--;
  });
  queueTail = run.catch(() => undefined);
  return run;
}

function scryptAsync(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return oneAtATime(() => scryptNow(password, salt, options));
}

function scryptNow(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, { ...options, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, PARAMS);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await scryptAsync(password, Buffer.from(salt, 'base64'), { N: Number(n), r: Number(r), p: Number(p) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}
