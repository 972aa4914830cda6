/**
 * serve's own certificate: `<stateDir>/tls/cert.pem` and `key.pem` (both 0600 in a 0700 folder).
 * Made once, atomically: openssl writes the pair into a private temp folder beside it, the files are
 * synced, and the folder is renamed to `tls/`; so `tls/` holds a whole pair or does not exist, and a
 * second process making one at the same moment loses the rename and uses the winner's. Never
 * replaced: other nodes pin its fingerprint, so a damaged pair is an error naming the files and the way
 * out, never a silent new certificate.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmod, lstat, mkdtemp, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ColdvaultError, errnoCode, ioError } from '../../core/index.js';
import { ensureDir, fsyncDir, PRIVATE_FILE, removeTree } from '../../datastore/index.js';
import { makeSelfSigned } from './openssl.js';

export interface TlsFiles {
  cert: string;
  key: string;
}

export const TLS_DIR = 'tls';

export function selfSignedFiles(stateDir: string): TlsFiles {
  return { cert: join(stateDir, TLS_DIR, 'cert.pem'), key: join(stateDir, TLS_DIR, 'key.pem') };
}

/** The state dir's pair, checked; made first when there is none (`created`). TLS_CERT_DAMAGED / TLS_CERT_FAILED. */
export async function ensureSelfSigned(stateDir: string, node: string): Promise<TlsFiles & { created: boolean; x509: X509Certificate }> {
  const files = selfSignedFiles(stateDir);
  const created = !(await exists(join(stateDir, TLS_DIR))) && (await makePair(stateDir, node));
  return { ...files, created, x509: await checkPair(files, generatedHint(stateDir)) };
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw ioError(`looking at '${path}'`, err);
  }
}

/** Makes the pair in a temp folder and renames it into place; false when another process was first. */
async function makePair(stateDir: string, node: string): Promise<boolean> {
  await ensureDir(stateDir);
  const temp = await mkdtemp(join(stateDir, `.${TLS_DIR}-`)); // 0700
  try {
    const files = await makeSelfSigned(temp, node);
    await Promise.all([seal(files.cert), seal(files.key)]);
    await fsyncDir(temp);
    return await renameInto(temp, join(stateDir, TLS_DIR));
  } finally {
    await removeTree(temp);
  }
}

async function seal(file: string): Promise<void> {
  await chmod(file, PRIVATE_FILE);
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function renameInto(temp: string, dir: string): Promise<boolean> {
  try {
    await rename(temp, dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOTEMPTY' || errnoCode(err) === 'EEXIST') return false;
    throw ioError(`renaming '${temp}' to '${dir}'`, err);
  }
  await fsyncDir(join(dir, '..'));
  return true;
}

const generatedHint = (stateDir: string): string =>
  `other nodes pin this certificate's fingerprint, so coldvault does not make a new one by itself: put the files back from a backup, ` +
  `or remove the folder '${join(stateDir, TLS_DIR)}' to have a new certificate made, then give its fingerprint (coldvault cert fingerprint) to the nodes that connect here`;

/** Reads and checks a pair (certificate parses, key parses and belongs to it); TLS_CERT_DAMAGED naming the files and `hint`. */
export async function checkPair(files: TlsFiles, hint: string): Promise<X509Certificate> {
  const damaged = (why: string, cause?: unknown): ColdvaultError =>
    new ColdvaultError('TLS_CERT_DAMAGED', `the TLS certificate '${files.cert}' and key '${files.key}' cannot be used: ${why}; ${hint}`, { cause });
  const [certPem, keyPem] = await Promise.all([readFile(files.cert), readFile(files.key)]).catch((err: unknown) => {
    throw damaged(`reading them failed: ${err instanceof Error ? err.message : String(err)}`, err);
  });
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw damaged(`the certificate does not parse (${(err as Error).message})`, err);
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch (err) {
    throw damaged(`the key does not parse (${(err as Error).message})`, err);
  }
  if (!matches) throw damaged('the key does not belong to the certificate');
  return cert;
}
