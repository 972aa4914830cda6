/**
 * `coldvault verify [<vmid> [--version N]] --store <dir> [--json]`: exit 1 when anything is damaged
 * (FAILED) or could not be read (INCOMPLETE: trouble with the disk, not damage); 0 when all checked
 * versions are whole (versions pruned meanwhile are skipped). Warns about files others can read.
 */
import { ColdvaultError, parseGuestId, parsePositiveInt } from '../../core/index.js';
import { verifyStore, verifyVerdict } from '../../pipeline/index.js';
import { str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';

export const verifyOptions: OptionSpec = { store: { type: 'string' }, version: { type: 'string' } };
export const verifyHelp = `coldvault verify [<vmid> [--version N]] --store <dir> [--json]
  Re-reads every chunk of the versions and checks CRC and SHA-256; damaged chunks are reported and
  quarantined, missing ones reported; chunks that cannot be read (I/O errors: the disk or its
  connection) are left in place and their versions reported as not fully checked (incomplete).`;

export async function verifyCommand(ctx: CommandContext): Promise<number> {
  const guestId = ctx.args.positionals[0] ? parseGuestId(ctx.args.positionals[0], 'vmid') : undefined;
  const versionArg = str(ctx.args, 'version');
  if (versionArg && !guestId) throw new ColdvaultError('USAGE', 'coldvault verify: --version needs a vmid');
  const version = versionArg ? parsePositiveInt(versionArg, '--version') : undefined;
  const pool = ctx.pool(); // first: the workers load their modules while the store and catalog open
  const { store, catalog } = await ctx.openStore();
  const result = await verifyStore({ store, catalog, pool, guestId, version, log: ctx.log, onProgress: (p) => ctx.bar.update(p) });
  if (ctx.json) ctx.printJson(result);
  else ctx.print(verifyVerdict(result).join('\n'));
  return result.ok ? 0 : 1;
}
