/**
 * Encrypted versions (issue 13): the keys of one master key and the sealed manifest.
 *
 * A version made with a key is marked in its manifest by `encryption`:
 *   {fingerprint, config: base64(nonce 12 | AES-256-GCM(config-encrypt subkey, config text) | tag 16),
 *    mac: HMAC-SHA-256(metadata subkey, canonical manifest JSON with mac "")}
 * and its plain `config` field only says so (sealedConfigNote). The MAC covers every field: guest id, version number, time,
 * each disk's size, chunk size and disk digest (the SHA-256 chain over the index's chunk names,
 * format/digest.ts). So an index is authenticated through its manifest (checkIndexDigest compares the
 * chain before any chunk is read), a manifest moved to another version's folder names the wrong
 * version, and an edited or truncated one fails the MAC. The plain `checksum` stays: it finds accidents
 * without the key. What stays readable without the key: guest id and name, times, sizes, the disk
 * keys and volume names, which chunks are all zero, and the version's log (README, threat model).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ColdvaultError } from '../core/index.js';
import { type ChunkKeys, chunkKeys } from './encrypted-blob.js';
import { subkey } from './key-file.js';
import type { Manifest } from './manifest.js';

/** The keys of one master key, as the flows use them. */
export interface VersionKey {
  readonly fingerprint: string;
  /** the master key itself: handed to the chunk workers, which derive ChunkKeys from it */
  readonly master: Uint8Array;
  readonly chunks: ChunkKeys;
  /** authenticates manifests */
  readonly mac: Buffer;
  /** seals the config inside a manifest */
  readonly config: Buffer;
}

export function versionKey(master: Uint8Array): VersionKey {
  const chunks = chunkKeys(master);
  return { fingerprint: chunks.fingerprint, master, chunks, mac: subkey(master, 'metadata'), config: subkey(master, 'config-encrypt') };
}

export interface ManifestEncryption {
  fingerprint: string;
  config: string;
  mac: string;
}

const NONCE = 12;
const TAG = 16;

/** What the plain `config` field (and the version's qemu-server.conf) of an encrypted version says. */
export function sealedConfigNote(fingerprint: string): string {
  return `# encrypted with key ${fingerprint}: 'coldvault list --keyfile FILE' shows this configuration\n`;
}

/** The manifest of an encrypted version: config sealed, everything authenticated. */
export function sealManifest(plain: Manifest, key: VersionKey): Manifest {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', key.config, nonce);
  cipher.setAAD(Buffer.from(`${plain.guestId}/${plain.version}`));
  const sealed = Buffer.concat([nonce, cipher.update(plain.config, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  const unsigned: Manifest = {
    ...plain,
    config: sealedConfigNote(key.fingerprint),
    encryption: { fingerprint: key.fingerprint, config: sealed.toString('base64'), mac: '' },
  };
  return { ...unsigned, encryption: { ...(unsigned.encryption as ManifestEncryption), mac: manifestMac(unsigned, key) } };
}

/**
 * The manifest of an encrypted version with its config opened, after checking it is the version
 * asked for and its MAC: KEY_WRONG naming both fingerprints for another key, MANIFEST_CORRUPT for an
 * edited, truncated or moved manifest. A manifest without `encryption` is answered as it is.
 */
export function openManifest(manifest: Manifest, key: VersionKey, asked: { guestId: string; version: number }, what: string): Manifest {
  const enc = manifest.encryption;
  if (!enc) return manifest;
  if (enc.fingerprint !== key.fingerprint) {
    throw new ColdvaultError('KEY_WRONG', `${what} is encrypted with key ${enc.fingerprint}, but the key given is ${key.fingerprint}`);
  }
  const expected = manifestMac({ ...manifest, encryption: { ...enc, mac: '' } }, key);
  if (!/^[0-9a-f]{64}$/.test(enc.mac) || !timingSafeEqual(Buffer.from(enc.mac, 'hex'), Buffer.from(expected, 'hex'))) {
    throw new ColdvaultError('MANIFEST_CORRUPT', `manifest of ${what} does not authenticate under key ${key.fingerprint}: it was changed`);
  }
  if (manifest.guestId !== asked.guestId || manifest.version !== asked.version) {
    throw new ColdvaultError(
      'MANIFEST_CORRUPT',
      `manifest of ${what} is that of version ${manifest.version} of guest ${manifest.guestId}: it was moved or swapped`,
    );
  }
  return { ...manifest, config: openConfig(enc.config, key, manifest, what) };
}

/** KEY_REQUIRED naming the key, for a flow that cannot go on without it. */
export function requireKey(manifest: Manifest, key: VersionKey | undefined, what: string, option = '--keyfile FILE'): VersionKey {
  const enc = manifest.encryption;
  if (!enc) throw new ColdvaultError('KEY_REQUIRED', `${what} is not encrypted`);
  if (!key) throw new ColdvaultError('KEY_REQUIRED', `${what} is encrypted with key ${enc.fingerprint}: give its key file (${option})`);
  return key;
}

function manifestMac(manifest: Manifest, key: VersionKey): string {
  return createHmac('sha256', key.mac).update(sortedJson(manifest)).digest('hex');
}

/** JSON with every object's keys sorted: the MAC does not depend on the order a writer put fields in. */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${sortedJson(v)}`).join(',')}}`;
}

function openConfig(sealedBase64: string, key: VersionKey, manifest: Manifest, what: string): string {
  const sealed = Buffer.from(sealedBase64, 'base64');
  if (sealed.length < NONCE + TAG) throw new ColdvaultError('MANIFEST_CORRUPT', `manifest of ${what}: its sealed config is too short`);
  const decipher = createDecipheriv('aes-256-gcm', key.config, sealed.subarray(0, NONCE));
  decipher.setAAD(Buffer.from(`${manifest.guestId}/${manifest.version}`));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(NONCE, sealed.length - TAG)), decipher.final()]).toString('utf8');
  } catch (cause) {
    throw new ColdvaultError('MANIFEST_CORRUPT', `manifest of ${what}: its sealed config does not open under key ${key.fingerprint}`, { cause });
  }
}
