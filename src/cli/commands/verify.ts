/**
 * `coldvault verify [<vmid> [--version N]] --store <dir> [--json]`: exit 1 when anything is damaged
 * (FAILED) or could not be read (INCOMPLETE: trouble with the disk, not damage); 0 when all checked
 * versions are whole (versions pruned meanwhile are skipped). Warns about files others can read.
 * With `--remote NODE` the versions of datastore --store on that node of the cluster (remote-read.ts):
 * every chunk comes through the wire and is checked here; damaged chunks stay on that node (no
 * quarantine from here: the report says so), and no catalog records the verdicts.
 */
import { ColdvaultError, parseGuestId, parsePositiveInt } from '../../core/index.js';
import { remoteSource, s3Source, verifyStore, verifyVerdict, type VerifyOptions, type VerifyResult } from '../../pipeline/index.js';
import { str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';
import { keyFileOptions, keyOption } from '../key-option.js';
import { REMOTE_HELP, remoteRef, remoteStore, type RemoteRef } from './remote-read.js';
import { S3_HELP, s3Options } from '../s3-option.js';

export const verifyOptions: OptionSpec = {
  store: { type: 'string' },
  version: { type: 'string' },
  remote: { type: 'string' },
  ...keyFileOptions,
  ...s3Options,
};
export const verifyHelp = `coldvault verify [<vmid> [--version N]] --store <dir> [--remote NODE] [--keyfile FILE] [--json]
  Re-reads every chunk of the versions and checks CRC and SHA-256; damaged chunks are reported and
  quarantined, missing ones reported; chunks that cannot be read (I/O errors: the disk or its
  connection) are left in place and their versions reported as not fully checked (incomplete).
${REMOTE_HELP}
  Damaged chunks are reported but stay on that node: 'coldvault verify' there quarantines them.
${S3_HELP}
  Encrypted versions: with --keyfile FILE (their key) everything is checked (manifest MAC, chunk tags and
  keyed digests); without it only what shows without the key (blob CRC and structure, index against
  manifest), and the report says their content was not checked (exit 0 when that much is clean).`;

export async function verifyCommand(ctx: CommandContext): Promise<number> {
  const guestId = ctx.args.positionals[0] ? parseGuestId(ctx.args.positionals[0], 'vmid') : undefined;
  const versionArg = str(ctx.args, 'version');
  if (versionArg && !guestId) throw new ColdvaultError('USAGE', 'coldvault verify: --version needs a vmid');
  const version = versionArg ? parsePositiveInt(versionArg, '--version') : undefined;
  const remote = remoteRef(ctx);
  const key = await keyOption(ctx, 'keyfile');
  const pool = ctx.pool(); // first: the workers load their modules while the store and catalog open
  const options: VerifyOptions = { pool, guestId, version, key, log: ctx.log, onProgress: (p) => ctx.bar.update(p) };
  if (remote) return verifyRemote(ctx, remote, options);
  const s3 = ctx.s3Settings();
  const opened = s3 ? await ctx.openS3Store(s3) : undefined;
  const result = opened
    ? await verifyStore({ ...options, source: s3Source(opened.store), catalog: opened.catalog })
    : await verifyStore({ ...options, ...(await ctx.openStore()) });
  if (ctx.json) ctx.printJson(result);
  else ctx.print(verifyVerdict(result).join('\n'));
  return result.ok ? 0 : 1;
}

async function verifyRemote(ctx: CommandContext, remote: RemoteRef, options: VerifyOptions): Promise<number> {
  const source = remoteSource(remoteStore(ctx, remote), remote.node);
  try {
    const result = await verifyStore({ ...options, source });
    if (ctx.json) ctx.printJson({ ...result, remote: remote.node, store: remote.store });
    else ctx.print([...verifyVerdict(result), ...remoteNotes(result, remote)].join('\n'));
    return result.ok ? 0 : 1;
  } finally {
    source.close();
  }
}

/** What a remote verify cannot do about the damage it found, and where the trouble of unreadable chunks lies. */
function remoteNotes(result: VerifyResult, remote: RemoteRef): string[] {
  const notes: string[] = [];
  const damaged = result.badChunks.filter((b) => b.trouble === 'damaged').length;
  if (damaged > 0) {
    notes.push(
      `${damaged} damaged chunk(s) left in datastore '${remote.store}' on node ${remote.node}: a remote chunk cannot be quarantined from here; run 'coldvault verify --store ${remote.store}' on ${remote.node} to quarantine them`,
    );
  }
  if (result.unreadableChunks.length > 0) {
    notes.push(`the unreadable chunks could not be read from node ${remote.node}: the trouble is that node (its serve, its disk) or the network to it`);
  }
  return notes;
}
