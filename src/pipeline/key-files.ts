/**
 * Loading a key file for a flow (issue 13): read and parse it (format/key-file.ts), ask for the
 * passphrase only when it has one (the caller says where it comes from: a prompt, the environment, a
 * file), open it, and answer the keys the flows use (format/sealed-manifest.ts VersionKey). The
 * passphrase and the master key never leave this process: no catalog row, log line or API answer
 * holds them; a job stores the key file's path.
 */
import { readFile } from 'node:fs/promises';
import { ColdvaultError, describeError } from '../core/index.js';
import { needsPassphrase, openKeyFile, parseKeyFile, versionKey, type KeyFile, type VersionKey } from '../format/index.js';

export async function readKeyFile(path: string): Promise<KeyFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ColdvaultError('KEY_INVALID', `cannot read key file '${path}': ${describeError(err)}`, { cause: err });
  }
  return parseKeyFile(text, path);
}

/** The passphrase in a passphrase file's text: its first line; KEY_PASSPHRASE_WRONG naming `path` when that is empty. */
export function passphraseIn(text: string, path: string): string {
  const line = text.split(/\r?\n/)[0] ?? '';
  if (line === '') throw new ColdvaultError('KEY_PASSPHRASE_WRONG', `the passphrase file '${path}' is empty (its first line is the passphrase)`);
  return line;
}

/** The keys of key file `path`; `passphrase` is asked only when the file has one. */
export async function loadVersionKey(path: string, passphrase: () => Promise<string>): Promise<VersionKey> {
  const file = await readKeyFile(path);
  const master = await openKeyFile(file, needsPassphrase(file) ? await passphrase() : undefined, path);
  return versionKey(master);
}
