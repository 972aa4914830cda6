/**
 * Certificate fingerprints, as Proxmox Backup Server shows them: the SHA-256 of the certificate's DER
 * bytes as 32 upper-case hex pairs joined by ':' (`AB:CD:...`), which is also what Node's
 * `X509Certificate.fingerprint256` and a TLS socket's peer certificate give. A node's certificate is
 * trusted by this value (pinning), not through a CA: the server prints it (`coldvault cert
 * fingerprint`), the admin copies it into the other nodes' config.
 */
import { timingSafeEqual } from 'node:crypto';
import { ColdvaultError } from './errors.js';

const HEX_PAIRS = /^[0-9A-F]{64}$/;

/** 32 upper-case hex pairs joined by ':'. */
export function formatFingerprint(sha256: Uint8Array): string {
  return Buffer.from(sha256).toString('hex').toUpperCase().match(/../g)?.join(':') ?? '';
}

/**
 * A fingerprint as an admin may paste it (any case; pairs joined by ':', or 64 hex digits without them)
 * in its canonical form; CONFIG_INVALID naming `what` and the value otherwise.
 */
export function parseFingerprint(text: string, what = 'fingerprint'): string {
  const trimmed = text.trim().toUpperCase();
  const bare = /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/.test(trimmed) ? trimmed.replaceAll(':', '') : trimmed;
  if (!HEX_PAIRS.test(bare)) {
    throw new ColdvaultError(
      'CONFIG_INVALID',
      `${what} '${text}' is not a SHA-256 fingerprint: expected 32 hex pairs like AB:CD:...:EF (coldvault cert fingerprint prints it)`,
    );
  }
  return formatFingerprint(Buffer.from(bare, 'hex'));
}

/** Whether two fingerprints (canonical or as parseFingerprint takes them) are the same, in constant time. */
export function sameFingerprint(a: string, b: string): boolean {
  return timingSafeEqual(fingerprintBytes(a), fingerprintBytes(b));
}

function fingerprintBytes(fingerprint: string): Buffer {
  return Buffer.from(parseFingerprint(fingerprint).replaceAll(':', ''), 'hex');
}
