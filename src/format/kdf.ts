/**
 * Key derivation from a passphrase, for the key file's wrapping key: scrypt (node:crypto, native;
 * the default) or argon2id (@noble/hashes, pure JavaScript). Measured on this project's machine
 * (bench/kdf.mjs, figures in bench/RESULTS.md): scrypt with 128 MiB (N=2^17, r=8) takes about a third
 * of a second, argon2id needs about twice that for the same memory in JavaScript; so scrypt gives an
 * attacker the most memory-hard work per second that an admin waits. Parameters are stored in the
 * key file and bounded when read (a crafted key file must not make coldvault allocate gigabytes).
 */
import { randomBytes, scrypt } from 'node:crypto';
import { argon2idAsync } from '@noble/hashes/argon2.js';
import { ColdvaultError } from '../core/index.js';

export type KdfName = 'scrypt' | 'argon2id' | 'none';

export type KdfParams =
  | { name: 'scrypt'; N: number; r: number; p: number; salt: string }
  | { name: 'argon2id'; t: number; m: number; p: number; salt: string }
  | { name: 'none' };

/** 128 MiB, ~0.35 s here */
const SCRYPT_DEFAULT = { N: 2 ** 17, r: 8, p: 1 };
/** 64 MiB, 3 passes (RFC 9106's second recommendation) */
const ARGON2_DEFAULT = { t: 3, m: 64 * 1024, p: 1 };
const MAX_MEMORY = 1024 * 1024 * 1024;

export function newKdfParams(name: KdfName): KdfParams {
  const salt = randomBytes(16).toString('base64');
  if (name === 'scrypt') return { name, ...SCRYPT_DEFAULT, salt };
  if (name === 'argon2id') return { name, ...ARGON2_DEFAULT, salt };
  return { name: 'none' };
}

export function parseKdfName(text: string): KdfName {
  if (text === 'scrypt' || text === 'argon2id' || text === 'none') return text;
  throw new ColdvaultError('USAGE', `--kdf '${text}': expected scrypt (the default), argon2id or none (no passphrase)`);
}

/** The 32-byte wrapping key for `passphrase`; KEY_INVALID when the parameters are out of bounds. */
export async function deriveWrappingKey(passphrase: string, kdf: KdfParams, where: string): Promise<Buffer> {
  checkKdf(kdf, where);
  if (kdf.name === 'none') throw new ColdvaultError('KEY_INVALID', `${where}: has no passphrase (kdf none)`);
  const salt = Buffer.from(kdf.salt, 'base64');
  if (kdf.name === 'argon2id') return Buffer.from(await argon2idAsync(passphrase, salt, { t: kdf.t, m: kdf.m, p: kdf.p, dkLen: 32 }));
  return new Promise((resolve, reject) => {
    scrypt(passphrase, salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 2 * MAX_MEMORY }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Bounds a key file's KDF parameters: KEY_INVALID naming `where` and the parameter. */
export function checkKdf(kdf: KdfParams, where: string): void {
  const bad = (what: string): never => {
    throw new ColdvaultError('KEY_INVALID', `${where}: kdf ${what}`);
  };
  const int = (v: unknown, lo: number, hi: number, name: string): void => {
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) bad(`${name} ${String(v)} is out of bounds (${lo}..${hi})`);
  };
  if (kdf.name === 'none') return;
  if (typeof kdf.salt !== 'string' || Buffer.from(kdf.salt, 'base64').length < 16) bad('salt is missing or shorter than 16 bytes');
  if (kdf.name === 'scrypt') {
    int(kdf.N, 2 ** 14, 2 ** 22, 'N');
    if ((kdf.N & (kdf.N - 1)) !== 0) bad(`N ${kdf.N} is not a power of two`);
    int(kdf.r, 1, 32, 'r');
    int(kdf.p, 1, 16, 'p');
    if (128 * kdf.N * kdf.r > MAX_MEMORY) bad('asks for more than 1 GiB of memory');
  } else if (kdf.name === 'argon2id') {
    int(kdf.t, 1, 20, 't');
    int(kdf.m, 8 * 1024, MAX_MEMORY / 1024, 'm (KiB)');
    int(kdf.p, 1, 16, 'p');
  } else bad(`'${String((kdf as { name: unknown }).name)}' is not scrypt, argon2id or none`);
}

/** The parameters in a fixed order, for the key file's authenticated data. */
export function kdfCanonical(kdf: KdfParams): string {
  if (kdf.name === 'scrypt') return `scrypt:N=${kdf.N}:r=${kdf.r}:p=${kdf.p}:salt=${kdf.salt}`;
  if (kdf.name === 'argon2id') return `argon2id:t=${kdf.t}:m=${kdf.m}:p=${kdf.p}:salt=${kdf.salt}`;
  return 'none';
}
