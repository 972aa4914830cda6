/**
 * The key options of the commands that read or write encrypted versions: `--encrypt FILE` (backup)
 * and `--keyfile FILE` (restore, verify, list), with the passphrase from `--passphrase-file`,
 * COLDVAULT_KEY_PASSPHRASE or a prompt (passphrase.ts), never from an argument.
 */
import type { VersionKey } from '../format/index.js';
import { loadVersionKey } from '../pipeline/index.js';
import { str, type OptionSpec } from './args.js';
import type { CommandContext } from './context.js';
import { readPassphrase } from './passphrase.js';

export const keyFileOptions: OptionSpec = { keyfile: { type: 'string' }, 'passphrase-file': { type: 'string' } };
export const encryptOptions: OptionSpec = { encrypt: { type: 'string' }, 'passphrase-file': { type: 'string' } };

/** The key the option `name` names (undefined when it is not given). */
export async function keyOption(ctx: CommandContext, name: 'keyfile' | 'encrypt'): Promise<VersionKey | undefined> {
  const path = str(ctx.args, name);
  if (path === undefined) return undefined;
  return loadVersionKey(path, () =>
    readPassphrase({ file: str(ctx.args, 'passphrase-file'), env: 'COLDVAULT_KEY_PASSPHRASE', prompt: `passphrase of key file '${path}': ` }),
  );
}
