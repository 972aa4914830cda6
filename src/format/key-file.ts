/**
 * The master key of encrypted versions and its key file. The master key is 32 random bytes; every
 * key coldvault uses is derived from it with HKDF-SHA-256 under its own label (subkey), so no two
 * uses share a key, and the fingerprint (16 bytes of such a derivation, `ab:cd:...`) names a key
 * without revealing anything of it.
 *
 * Key file (JSON, mode 0600): {format: "coldvault-key", version: 1, created, fingerprint, kdf, key}.
 * With a passphrase, `key` is base64(nonce 12 || AES-256-GCM(wrapping key, master) || tag 16), the
 * wrapping key from the passphrase by the kdf (kdf.ts), the authenticated data binding format,
 * version, created, fingerprint and the kdf parameters: a wrong passphrase or any edited field fails
 * the tag. With kdf none, `key` is the master key in base64 (the file itself is then the secret).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ColdvaultError } from '../core/index.js';
import { checkKdf, deriveWrappingKey, kdfCanonical, type KdfParams } from './kdf.js';

export const MASTER_KEY_BYTES = 32;

export interface KeyFile {
  format: 'coldvault-key';
  version: 1;
  /** ISO time the master key was made (kept across passphrase changes and paper-key imports) */
  created: string;
  fingerprint: string;
  kdf: KdfParams;
  key: string;
}

/** Uses of the master key: each gets its own derived key. */
export type SubkeyUse = 'chunk-id' | 'chunk-encrypt' | 'metadata' | 'config-encrypt' | 'fingerprint';

export function subkey(master: Uint8Array, use: SubkeyUse): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `coldvault ${use} v1`, 32));
}

/** `ab:cd:...` (16 bytes): names a master key, reveals nothing of it. */
export function keyFingerprint(master: Uint8Array): string {
  return formatFingerprint(subkey(master, 'fingerprint').subarray(0, 16));
}

export function newMasterKey(): Buffer {
  return randomBytes(MASTER_KEY_BYTES);
}

/** The key file of `master`, its key wrapped under `passphrase` (undefined only with kdf none). */
export async function makeKeyFile(master: Uint8Array, kdf: KdfParams, passphrase: string | undefined, created = new Date().toISOString()): Promise<KeyFile> {
  checkMaster(master);
  const head = { format: 'coldvault-key' as const, version: 1 as const, created, fingerprint: keyFingerprint(master), kdf };
  if (kdf.name === 'none') return { ...head, key: Buffer.from(master).toString('base64') };
  if (!passphrase) throw new ColdvaultError('KEY_PASSPHRASE_WRONG', 'an empty passphrase protects nothing: give one, or make the key file with --kdf none');
  const wrapping = await deriveWrappingKey(passphrase, kdf, 'new key file');
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', wrapping, nonce);
  cipher.setAAD(Buffer.from(boundData(head)));
  const sealed = Buffer.concat([nonce, cipher.update(master), cipher.final(), cipher.getAuthTag()]);
  return { ...head, key: sealed.toString('base64') };
}

/** Parses a key file's text, checked for shape and bounds: KEY_INVALID naming `path`. */
export function parseKeyFile(text: string, path: string): KeyFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw invalid(path, 'is not JSON');
  }
  const f = json as Partial<KeyFile>;
  if (typeof f !== 'object' || f === null || f.format !== 'coldvault-key') throw invalid(path, 'is not a coldvault key file (no "format": "coldvault-key")');
  if (f.version !== 1) throw invalid(path, `has version ${String(f.version)}; this coldvault reads version 1`);
  if (typeof f.created !== 'string' || Number.isNaN(Date.parse(f.created))) throw invalid(path, 'has no valid "created" time');
  if (typeof f.fingerprint !== 'string' || !/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/.test(f.fingerprint)) throw invalid(path, 'has no valid "fingerprint"');
  if (typeof f.kdf !== 'object' || f.kdf === null) throw invalid(path, 'has no "kdf"');
  checkKdf(f.kdf, `key file '${path}'`);
  if (typeof f.key !== 'string') throw invalid(path, 'has no "key"');
  return f as KeyFile;
}

/** Whether opening `file` needs a passphrase. */
export function needsPassphrase(file: KeyFile): boolean {
  return file.kdf.name !== 'none';
}

/** The master key in `file`: KEY_PASSPHRASE_WRONG when the passphrase does not open it, KEY_INVALID when damaged. */
export async function openKeyFile(file: KeyFile, passphrase: string | undefined, path: string): Promise<Buffer> {
  const sealed = Buffer.from(file.key, 'base64');
  let master: Buffer;
  if (file.kdf.name === 'none') master = sealed;
  else {
    if (!passphrase) throw new ColdvaultError('KEY_PASSPHRASE_WRONG', `key file '${path}' (key ${file.fingerprint}) needs its passphrase`);
    if (sealed.length !== 12 + MASTER_KEY_BYTES + 16) throw invalid(path, 'has a "key" of the wrong length');
    const wrapping = await deriveWrappingKey(passphrase, file.kdf, `key file '${path}'`);
    const decipher = createDecipheriv('aes-256-gcm', wrapping, sealed.subarray(0, 12));
    decipher.setAAD(Buffer.from(boundData(file)));
    decipher.setAuthTag(sealed.subarray(12 + MASTER_KEY_BYTES));
    try {
      master = Buffer.concat([decipher.update(sealed.subarray(12, 12 + MASTER_KEY_BYTES)), decipher.final()]);
    } catch {
      throw new ColdvaultError(
        'KEY_PASSPHRASE_WRONG',
        `the passphrase does not open key file '${path}' (key ${file.fingerprint}), or the file was edited (its fields are authenticated)`,
      );
    }
  }
  if (master.length !== MASTER_KEY_BYTES) throw invalid(path, 'has a "key" of the wrong length');
  const fingerprint = keyFingerprint(master);
  if (!timingSafeEqual(Buffer.from(fingerprint), Buffer.from(file.fingerprint.padEnd(fingerprint.length).slice(0, fingerprint.length)))) {
    throw invalid(path, `holds key ${fingerprint}, but says ${file.fingerprint}: the file is damaged`);
  }
  return master;
}

export function formatFingerprint(bytes: Uint8Array): string {
  return Buffer.from(bytes)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1:');
}

function boundData(head: Pick<KeyFile, 'format' | 'version' | 'created' | 'fingerprint' | 'kdf'>): string {
  return `${head.format}|${head.version}|${head.created}|${head.fingerprint}|${kdfCanonical(head.kdf)}`;
}

function checkMaster(master: Uint8Array): void {
  if (master.length !== MASTER_KEY_BYTES) throw new ColdvaultError('KEY_INVALID', `a master key has ${MASTER_KEY_BYTES} bytes, not ${master.length}`);
}

function invalid(path: string, why: string): ColdvaultError {
  return new ColdvaultError('KEY_INVALID', `key file '${path}' ${why}`);
}
