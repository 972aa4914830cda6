/**
 * `coldvault key create|show|change-passphrase|paperkey|import`: the master key of encrypted versions,
 * kept in a key file (mode 0600) that a passphrase protects (format/key-file.ts). The passphrase
 * comes from a file, the environment or a prompt (../passphrase.ts), never from an argument. A new
 * key file never replaces an existing file; change-passphrase replaces its file atomically (the old
 * one stays whole until the new one is durable), keeping the master key, so every version made with
 * it stays readable.
 */
import { link, readFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ColdvaultError, describeError } from '../../core/index.js';
import { fsyncDir, tempNameFor, writeFileDurable } from '../../datastore/index.js';
import {
  type KeyFile,
  makeKeyFile,
  needsPassphrase,
  newKdfParams,
  newMasterKey,
  openKeyFile,
  paperKeyText,
  parseKdfName,
  parsePaperKey,
} from '../../format/index.js';
import { str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';
import { readPassphrase } from '../passphrase.js';
import { readKeyFile } from '../../pipeline/index.js';

export const keyOptions: OptionSpec = {
  kdf: { type: 'string' },
  'passphrase-file': { type: 'string' },
  'new-passphrase-file': { type: 'string' },
};

export const keyHelp = `coldvault key create FILE [--kdf scrypt|argon2id|none] [--passphrase-file F]
                                   makes a new 256-bit master key in key file FILE (mode 0600)
coldvault key show FILE [--json]   its fingerprint, creation time and KDF (no passphrase needed)
coldvault key change-passphrase FILE [--passphrase-file F] [--new-passphrase-file F] [--kdf KDF]
coldvault key paperkey FILE [--passphrase-file F]
                                   prints the master key as text to keep on paper
coldvault key import PAPERFILE NEWFILE [--kdf KDF] [--new-passphrase-file F]
                                   makes a key file again from a paper key
  Passphrases: from --passphrase-file (first line), COLDVAULT_KEY_PASSPHRASE, or a prompt on the
  terminal; a new one (create, change-passphrase, import) from --new-passphrase-file (create also
  takes --passphrase-file), COLDVAULT_KEY_NEW_PASSPHRASE, or a prompt, asked twice. --kdf none: no
  passphrase, the key file itself is the secret. Lose the key file and the paper key, and the
  encrypted versions are gone for good: nobody can read them.`;

export async function keyCommand(ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = ctx.args.positionals;
  const run = SUBCOMMANDS[sub ?? ''];
  if (!run) throw new ColdvaultError('USAGE', `coldvault key: expected create, show, change-passphrase, paperkey or import, got '${sub ?? ''}'`);
  return run(ctx, rest);
}

const SUBCOMMANDS: Record<string, (ctx: CommandContext, args: string[]) => Promise<number>> = {
  create: async (ctx, args) => {
    const path = oneFile(args, 'create FILE');
    const kdf = newKdfParams(parseKdfName(str(ctx.args, 'kdf') ?? 'scrypt'));
    const passphrase = kdf.name === 'none' ? undefined : await newPassphrase(str(ctx.args, 'new-passphrase-file') ?? str(ctx.args, 'passphrase-file'), true);
    const file = await makeKeyFile(newMasterKey(), kdf, passphrase);
    await writeNewKeyFile(path, file);
    report(ctx, path, file, `made key file '${path}'`);
    return 0;
  },
  show: async (ctx, args) => {
    const path = oneFile(args, 'show FILE');
    report(ctx, path, await readKeyFile(path));
    return 0;
  },
  'change-passphrase': async (ctx, args) => {
    const path = oneFile(args, 'change-passphrase FILE');
    const file = await readKeyFile(path);
    const master = await unlock(ctx, file, path);
    const kdf = newKdfParams(parseKdfName(str(ctx.args, 'kdf') ?? (file.kdf.name === 'none' ? 'scrypt' : file.kdf.name)));
    const passphrase = kdf.name === 'none' ? undefined : await newPassphrase(str(ctx.args, 'new-passphrase-file'));
    const next = await makeKeyFile(master, kdf, passphrase, file.created);
    await writeFileDurable(path, keyFileBytes(next), { doing: `writing key file '${path}'` });
    report(ctx, path, next, `changed the passphrase of key file '${path}' (the key is the same: every version made with it stays readable)`);
    return 0;
  },
  paperkey: async (ctx, args) => {
    const path = oneFile(args, 'paperkey FILE');
    const file = await readKeyFile(path);
    const master = await unlock(ctx, file, path);
    if (ctx.json) ctx.printJson({ fingerprint: file.fingerprint, created: file.created, text: paperKeyText(master, file.created) });
    else ctx.print(paperKeyText(master, file.created));
    return 0;
  },
  import: async (ctx, args) => {
    const [paper, path, ...more] = args;
    if (!paper || !path || more.length > 0) throw new ColdvaultError('USAGE', 'coldvault key import: expected PAPERFILE NEWFILE');
    const text = await readFile(paper, 'utf8').catch((err: unknown) => {
      throw new ColdvaultError('USAGE', `cannot read the paper key '${paper}': ${describeError(err)}`, { cause: err });
    });
    const typed = parsePaperKey(text, `'${paper}'`);
    const kdf = newKdfParams(parseKdfName(str(ctx.args, 'kdf') ?? 'scrypt'));
    const passphrase = kdf.name === 'none' ? undefined : await newPassphrase(str(ctx.args, 'new-passphrase-file'));
    const file = await makeKeyFile(typed.master, kdf, passphrase, typed.created);
    await writeNewKeyFile(path, file);
    report(ctx, path, file, `made key file '${path}' from the paper key`);
    return 0;
  },
};

function oneFile(args: string[], usage: string): string {
  if (args.length !== 1 || !args[0]) throw new ColdvaultError('USAGE', `coldvault key ${usage}: expected exactly one key file`);
  return args[0];
}

async function unlock(ctx: CommandContext, file: KeyFile, path: string): Promise<Buffer> {
  const passphrase = needsPassphrase(file)
    ? await readPassphrase({ file: str(ctx.args, 'passphrase-file'), env: 'COLDVAULT_KEY_PASSPHRASE', prompt: `passphrase of key file '${path}': ` })
    : undefined;
  return openKeyFile(file, passphrase, path);
}

/**
 * A new passphrase: `file`, else COLDVAULT_KEY_NEW_PASSPHRASE, else (create only, where there is no
 * old one to mistake it for) COLDVAULT_KEY_PASSPHRASE, else a prompt asked twice.
 */
function newPassphrase(file: string | undefined, plainEnvToo = false): Promise<string> {
  const env = plainEnvToo && !process.env.COLDVAULT_KEY_NEW_PASSPHRASE ? 'COLDVAULT_KEY_PASSPHRASE' : 'COLDVAULT_KEY_NEW_PASSPHRASE';
  return readPassphrase({ file, env, prompt: 'new passphrase: ', confirm: true });
}

function keyFileBytes(file: KeyFile): Buffer {
  return Buffer.from(`${JSON.stringify(file, null, 2)}\n`);
}

/** Writes a new key file durably; KEY_EXISTS (nothing changed) when `path` exists. */
async function writeNewKeyFile(path: string, file: KeyFile): Promise<void> {
  const temp = `${tempNameFor(path)}.new`;
  await writeFileDurable(temp, keyFileBytes(file), { doing: `writing key file '${path}'`, syncDir: false });
  try {
    await link(temp, path); // never replaces: EEXIST
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new ColdvaultError('KEY_EXISTS', `'${path}' exists: a new key file never replaces a file (choose another name)`);
    throw new ColdvaultError('IO', `writing key file '${path}': ${describeError(err)}`, { cause: err });
  }
  await unlink(temp);
  await fsyncDir(dirname(path));
}

function report(ctx: CommandContext, path: string, file: KeyFile, done?: string): void {
  const kdf = file.kdf.name === 'none' ? 'none (no passphrase: the file itself is the secret)' : file.kdf.name;
  if (done) ctx.log.info(done);
  if (ctx.json) ctx.printJson({ path, fingerprint: file.fingerprint, created: file.created, kdf: file.kdf.name });
  else ctx.print([`key file     ${path}`, `fingerprint  ${file.fingerprint}`, `created      ${file.created}`, `kdf          ${kdf}`].join('\n'));
}
