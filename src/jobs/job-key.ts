/**
 * A job's key (job `encrypt`, issue 13), for unattended runs: loaded once per run, before any guest
 * is touched (runner.ts). The key file's passphrase, when it has one, is the first line of the job's
 * `passphraseFile`, else COLDVAULT_KEY_PASSPHRASE of the process that runs the job (`coldvault
 * serve`, `job run`); a job never prompts. A key file made with `--kdf none` needs neither. Every
 * failure (missing or damaged key file, missing or wrong passphrase) keeps the key's own code
 * (KEY_INVALID, KEY_PASSPHRASE_WRONG) and a message naming the job and the key file. The key and the
 * passphrase stay in this process: no log line, task result or catalog row holds them.
 * The API's restore and verify open the key of a request (its keyFile / passphraseFile) by the same
 * rule (loadKeySetting, server/request-key.ts).
 */
import { readFile } from 'node:fs/promises';
import { ColdvaultError, describeError, isColdvaultError } from '../core/index.js';
import type { VersionKey } from '../format/index.js';
import { loadVersionKey, passphraseIn } from '../pipeline/index.js';
import type { Job, JobEncryption } from './job-model.js';

export const PASSPHRASE_ENV = 'COLDVAULT_KEY_PASSPHRASE';

/** How an unattended flow opens a key, for its messages. */
export interface KeyOpening {
  /** who opens it, first in every failure message: "job 'nightly'", "restore" */
  label: string;
  /** what a failure means, after "could not be opened, " (e.g. "so no guest was stopped") */
  outcome?: string;
  /** how to give the passphrase when none came, after "the key file has a passphrase and " */
  noPassphrase: string;
  env?: NodeJS.ProcessEnv;
}

/** The job's key, or undefined when it does not encrypt; throws KEY_* naming the job and the key file. */
export async function loadJobKey(job: Pick<Job, 'id' | 'encrypt'>, env: NodeJS.ProcessEnv = process.env): Promise<VersionKey | undefined> {
  if (!job.encrypt) return undefined;
  return loadKeySetting(job.encrypt, {
    label: `job '${job.id}'`,
    outcome: 'so no guest was stopped',
    noPassphrase: `the job none: set the job's encrypt.passphraseFile (--encrypt-passphrase-file) or ${PASSPHRASE_ENV} in the environment of coldvault serve / job run`,
    env,
  });
}

/**
 * The key of `setting` (a key file and, optionally, a passphrase file: paths) without a prompt: the
 * passphrase is the passphrase file's first line, else COLDVAULT_KEY_PASSPHRASE; a `--kdf none` key needs
 * neither. Throws the key's own code (KEY_INVALID, KEY_PASSPHRASE_WRONG) with a message naming
 * `how.label` and the key file; never the passphrase.
 */
export async function loadKeySetting(setting: JobEncryption, how: KeyOpening): Promise<VersionKey> {
  try {
    return await loadVersionKey(setting.keyFile, () => unattendedPassphrase(setting, how));
  } catch (err) {
    const code = isColdvaultError(err) ? err.code : 'KEY_INVALID';
    const outcome = how.outcome ? `, ${how.outcome}` : '';
    throw new ColdvaultError(code, `${how.label}: key file '${setting.keyFile}' could not be opened${outcome}: ${describeError(err)}`, { cause: err });
  }
}

/** The first line of the passphrase file, else the environment; KEY_PASSPHRASE_WRONG saying how to give one. */
async function unattendedPassphrase(setting: JobEncryption, how: KeyOpening): Promise<string> {
  if (setting.passphraseFile !== undefined) {
    let text: string;
    try {
      text = await readFile(setting.passphraseFile, 'utf8');
    } catch (err) {
      throw new ColdvaultError('KEY_PASSPHRASE_WRONG', `cannot read the passphrase file '${setting.passphraseFile}': ${describeError(err)}`, { cause: err });
    }
    return passphraseIn(text, setting.passphraseFile);
  }
  const fromEnv = (how.env ?? process.env)[PASSPHRASE_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  throw new ColdvaultError('KEY_PASSPHRASE_WRONG', `the key file has a passphrase and ${how.noPassphrase}`);
}
