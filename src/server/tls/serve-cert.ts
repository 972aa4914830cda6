/** The certificate `serve` uses: the configured `tls: {cert, key}`, else its own (self-signed.ts), with what it says. */
import type { X509Certificate } from 'node:crypto';
import { checkPair, ensureSelfSigned, type TlsFiles } from './self-signed.js';

/** Config `tls`: PEM files, or "auto": the self-signed certificate coldvault makes, also on loopback. */
export type TlsSetting = TlsFiles | 'auto';

export interface CertInfo {
  /** SHA-256, `AB:CD:...` (what other nodes pin) */
  fingerprint: string;
  subject: string;
  subjectAltName: string;
  validFrom: string;
  validTo: string;
}

export interface ServeCertificate extends TlsFiles {
  source: 'configured' | 'generated';
  /** made by this call */
  created: boolean;
  info: CertInfo;
}

const CONFIGURED_HINT = 'fix or replace the files that "tls" names in the config';

/** Reads and checks the certificate serve uses; makes serve's own when `tls` is not configured and there is none yet. */
export async function serveCertificate(config: { tls?: TlsSetting; stateDir: string; node: string }): Promise<ServeCertificate> {
  if (typeof config.tls === 'object') {
    const cert = await checkPair(config.tls, CONFIGURED_HINT);
    return { cert: config.tls.cert, key: config.tls.key, source: 'configured', created: false, info: certInfo(cert) };
  }
  const made = await ensureSelfSigned(config.stateDir, config.node);
  return { cert: made.cert, key: made.key, source: 'generated', created: made.created, info: certInfo(made.x509) };
}

export function certInfo(cert: X509Certificate): CertInfo {
  return {
    fingerprint: cert.fingerprint256,
    subject: cert.subject.replaceAll('\n', ', '),
    subjectAltName: cert.subjectAltName ?? '',
    validFrom: new Date(cert.validFrom).toISOString(),
    validTo: new Date(cert.validTo).toISOString(),
  };
}
