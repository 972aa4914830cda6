/**
 * A job's key (job `encrypt`, issue 13), for unattended runs: loaded once per run, before any guest
 * is touched (runner.ts). The key file's passphrase, when it has one, is the first line of the job's
 * `passphraseFile`, else COLDVAULT_KEY_PASSPHRASE of the process that runs the job (`coldvault
 * serve`, `job run`); a job never prompts. A key file made with `--kdf none` needs neither. Every
 * failure (missing or damaged key file, missing or wrong passphrase) keeps the key's own code
 * (KEY_INVALID, KEY_PASSPHRASE_WRONG) and a message naming the job and the key file. The key and the
 * passphrase stay in this process: no log line, task result or catalog row holds them.
 */
import { readFile } from 'node:fs/promises';
import { ColdvaultError, describeError, isColdvaultError } from '../core/index.js';
import type { VersionKey } from '../format/index.js';
import { loadVersionKey } from '../pipeline/index.js';
import type { Job, JobEncryption } from './job-model.js';

export const PASSPHRASE_ENV = 'COLDVAULT_KEY_PASSPHRASE';

/** The job's key, or undefined when it does not encrypt; throws KEY_* naming the job and the key file. */
export async function loadJobKey(job: Pick<Job, 'id' | 'encrypt'>, env: NodeJS.ProcessEnv = process.env): Promise<VersionKey | undefined> {
  const setting = job.encrypt;
  if (!setting) return undefined;
  try {
    return await loadVersionKey(setting.keyFile, () => jobPassphrase(setting, env));
  } catch (err) {
    const code = isColdvaultError(err) ? err.code : 'KEY_INVALID';
    throw new ColdvaultError(code, `job '${job.id}': key file '${setting.keyFile}' could not be opened, so no guest was stopped: ${describeError(err)}`, {
      cause: err,
    });
  }
}

/** The first line of the passphrase file, else the environment; KEY_PASSPHRASE_WRONG saying how to give one. */
async function jobPassphrase(setting: JobEncryption, env: NodeJS.ProcessEnv): Promise<string> {
  if (setting.passphraseFile !== undefined) {
    let text: string;
    try {
      text = await readFile(setting.passphraseFile, 'utf8');
    } catch (err) {
      throw new ColdvaultError('KEY_PASSPHRASE_WRONG', `cannot read the passphrase file '${setting.passphraseFile}': ${describeError(err)}`, { cause: err });
    }
    const line = text.split(/\r?\n/)[0] ?? '';
    if (line === '')
      throw new ColdvaultError('KEY_PASSPHRASE_WRONG', `the passphrase file '${setting.passphraseFile}' is empty (its first line is the passphrase)`);
    return line;
  }
  const fromEnv = env[PASSPHRASE_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  throw new ColdvaultError(
    'KEY_PASSPHRASE_WRONG',
    `the key file has a passphrase and the job none: set the job's encrypt.passphraseFile (--encrypt-passphrase-file) or ${PASSPHRASE_ENV} in the environment of coldvault serve / job run`,
  );
}
