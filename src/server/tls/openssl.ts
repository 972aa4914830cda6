/**
 * Makes a self-signed certificate and its key with the `openssl` command (Debian's openssl package,
 * which ca-certificates depends on, so it is on every Proxmox VE / Debian host): ECDSA P-256, SHA-256,
 * valid 10 years, `CN=<node>`, SANs for the node name, localhost, 127.0.0.1 and ::1, not a CA, for TLS
 * servers only. The openssl config is written by us (`-config`), so the system's openssl.cnf (its
 * default extensions, e.g. CA:true) plays no part.
 */
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ColdvaultError, errnoCode } from '../../core/index.js';
import { PRIVATE_FILE } from '../../datastore/index.js';

const execFileAsync = promisify(execFile);
/** Pinning, not a CA's expiry, is what is trusted: a long validity spares re-pinning on every node. */
export const CERT_DAYS = 3650;
const OPENSSL_TIMEOUT_MS = 60_000;
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Writes `key.pem` and `cert.pem` into `dir` (a private folder of the caller's). */
export async function makeSelfSigned(dir: string, node: string): Promise<{ cert: string; key: string }> {
  const files = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  const config = join(dir, 'openssl.cnf');
  await writeFile(config, opensslConfig(node), { mode: PRIVATE_FILE });
  const args = [
    'req',
    '-x509',
    '-config',
    config,
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-pkeyopt',
    'ec_param_enc:named_curve',
    '-nodes',
    '-sha256',
    '-days',
    String(CERT_DAYS),
    '-keyout',
    files.key,
    '-out',
    files.cert,
  ];
  try {
    await execFileAsync('openssl', args, { timeout: OPENSSL_TIMEOUT_MS });
  } catch (err) {
    throw new ColdvaultError('TLS_CERT_FAILED', `making the self-signed TLS certificate of node '${node}' in '${dir}' failed: ${opensslFailure(err)}`, {
      cause: err,
    });
  } finally {
    await rm(config, { force: true });
  }
  return files;
}

function opensslFailure(err: unknown): string {
  if (errnoCode(err) === 'ENOENT')
    return `the openssl command is not installed (Debian package openssl), or set "tls": {"cert": ..., "key": ...} in the config`;
  const stderr = (err as { stderr?: unknown }).stderr;
  return typeof stderr === 'string' && stderr.trim() ? stderr.trim() : err instanceof Error ? err.message : String(err);
}

/** The openssl req config: subject, and the extensions of a TLS server certificate that is no CA. */
export function opensslConfig(node: string): string {
  const names = [...new Set([DNS_NAME.test(node) ? node : undefined, 'localhost'].filter((n): n is string => Boolean(n)))];
  const san = [...names.map((n) => `DNS:${n}`), 'IP:127.0.0.1', 'IP:::1'].join(', ');
  return `[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = ${commonName(node)}
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = ${san}
`;
}

/** The node name with only the characters an openssl config and a CN take as they are (at most 64). */
function commonName(node: string): string {
  return node.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64) || 'coldvault';
}
