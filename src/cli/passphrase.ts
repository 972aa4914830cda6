/**
 * Where a key file's passphrase comes from, never a command-line argument (it would show in `ps`
 * and the shell history): a file (`--passphrase-file`, its first line), the environment
 * (COLDVAULT_KEY_PASSPHRASE; for the new passphrase of change-passphrase and import:
 * COLDVAULT_KEY_NEW_PASSPHRASE / `--new-passphrase-file`), or a prompt on the terminal, echo off
 * (a new passphrase is asked twice). None of these: KEY_PASSPHRASE_WRONG saying how to give one.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { ColdvaultError, describeError } from '../core/index.js';
import { passphraseIn } from '../pipeline/index.js';

export interface PassphraseSource {
  /** a file whose first line is the passphrase */
  file?: string;
  /** the environment variable to read */
  env: 'COLDVAULT_KEY_PASSPHRASE' | 'COLDVAULT_KEY_NEW_PASSPHRASE';
  /** the prompt on a terminal */
  prompt: string;
  /** ask twice on a terminal (a new passphrase) */
  confirm?: boolean;
}

export async function readPassphrase(source: PassphraseSource): Promise<string> {
  if (source.file !== undefined) return fromFile(source.file);
  const env = process.env[source.env];
  if (env !== undefined && env !== '') return env;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    const option = source.env === 'COLDVAULT_KEY_PASSPHRASE' ? '--passphrase-file' : '--new-passphrase-file';
    throw new ColdvaultError('KEY_PASSPHRASE_WRONG', `a passphrase is needed: give ${option} FILE or set ${source.env} (no terminal to ask on)`);
  }
  const first = await prompt(source.prompt);
  if (source.confirm && (await prompt('again: ')) !== first) throw new ColdvaultError('KEY_PASSPHRASE_WRONG', 'the two passphrases differ');
  return first;
}

function fromFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ColdvaultError('USAGE', `cannot read the passphrase file '${path}': ${describeError(err)}`, { cause: err });
  }
  return passphraseIn(text, path);
}

/** One line from the terminal without echo. */
function prompt(text: string): Promise<string> {
  process.stderr.write(text);
  const silent = new Writable({ write: (_chunk, _enc, done) => done() });
  const rl = createInterface({ input: process.stdin, output: silent, terminal: true });
  return new Promise((resolve) => {
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}
