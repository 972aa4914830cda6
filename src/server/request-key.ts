/**
 * The key of a restore or verify request (issue 13). A request names a key file and, optionally, a
 * passphrase file (`keyFile`, `passphraseFile`: paths, never key material: the body schemas refuse
 * any other field), each inside the config's keyDirs as written and with symlinks resolved
 * (paths.ts checkKeyPath; a request has no "current" path a job could keep). The key is opened by the
 * rule of a job's key (jobs/job-key.ts loadKeySetting: the passphrase is the passphrase file's first
 * line, else COLDVAULT_KEY_PASSPHRASE of `coldvault serve`; never a prompt), before the task starts,
 * so a path outside keyDirs (PATH_NOT_ALLOWED) or a key that does not open (KEY_INVALID,
 * KEY_PASSPHRASE_WRONG) answers 400 at once. A restore also checks the version against the key
 * before its task starts (KEY_REQUIRED naming the version's key, KEY_WRONG naming both): 400.
 * Neither the key nor the passphrase reaches a log line, a task result or an answer.
 */
import { type Manifest, openManifest, requireKey, type VersionKey } from '../format/index.js';
import { loadKeySetting, PASSPHRASE_ENV } from '../jobs/index.js';
import type { ServerConfig } from './deps.js';
import { ApiError } from './errors.js';
import { checkKeyPath } from './paths.js';

/** The key fields of a restore or verify body. */
export interface KeyFields {
  keyFile?: string;
  passphraseFile?: string;
}

/** How a request names its key, in the messages. */
const KEY_OPTION = 'keyFile: a key file inside the config’s keyDirs';

/** The key `body` names (undefined: none); PATH_NOT_ALLOWED, INVALID_REQUEST or KEY_* naming `flow` and the key file. */
export async function requestKey(config: ServerConfig, body: KeyFields, flow: 'restore' | 'verify'): Promise<VersionKey | undefined> {
  const keyFile = checkKeyPath(body.keyFile, 'keyFile', config);
  const passphraseFile = checkKeyPath(body.passphraseFile, 'passphraseFile', config);
  if (!keyFile) {
    if (passphraseFile) throw new ApiError('INVALID_REQUEST', `${flow}: passphraseFile goes with keyFile (the key file it opens)`);
    return undefined;
  }
  return loadKeySetting(passphraseFile ? { keyFile, passphraseFile } : { keyFile }, {
    label: flow,
    outcome: `so no ${flow} was started`,
    noPassphrase: `the request none: give passphraseFile (a file inside keyDirs whose first line is the passphrase) or set ${PASSPHRASE_ENV} in the environment of coldvault serve`,
  });
}

/**
 * Checks that `key` reads version `asked` (its manifest `manifest`) before a restore starts: nothing
 * for a version that is not encrypted; KEY_REQUIRED naming its key without one, KEY_WRONG naming both
 * for another one, MANIFEST_CORRUPT when it does not authenticate.
 */
export function checkVersionKey(manifest: Manifest, key: VersionKey | undefined, asked: { guestId: string; version: number }): void {
  if (!manifest.encryption) return;
  const what = `version ${asked.version} of guest ${asked.guestId}`;
  openManifest(manifest, requireKey(manifest, key, what, KEY_OPTION), asked, what);
}
