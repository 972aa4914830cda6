/** `coldvault verify [<vmid> [--version N]] --store <dir> [--json]`: exit 1 when anything is bad. */
import { ColdvaultError } from '../../core/errors.js';
import { parseGuestId, parsePositiveInt } from '../../core/ids.js';
import { verifyStore } from '../../pipeline/index.js';
import { str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';

export const verifyOptions: OptionSpec = { store: { type: 'string' }, version: { type: 'string' } };
export const verifyHelp = `coldvault verify [<vmid> [--version N]] --store <dir> [--json]
  Re-reads every chunk of the versions and checks CRC and SHA-256; bad chunks are reported and quarantined.`;

export async function verifyCommand(ctx: CommandContext): Promise<number> {
  const guestId = ctx.args.positionals[0] ? parseGuestId(ctx.args.positionals[0], 'vmid') : undefined;
  const versionArg = str(ctx.args, 'version');
  if (versionArg && !guestId) throw new ColdvaultError('USAGE', 'coldvault verify: --version needs a vmid');
  const version = versionArg ? parsePositiveInt(versionArg, '--version') : undefined;
  const pool = ctx.pool(); // first: the workers load their modules while the store and catalog open
  const { store, catalog } = await ctx.openStore();
  const result = await verifyStore({ store, catalog, pool, guestId, version, log: ctx.log, onProgress: (p) => ctx.bar.update(p) });
  if (ctx.json) ctx.printJson(result);
  else ctx.print(result.ok ? `verify ok: ${result.versions.length} version(s), ${result.chunks} chunks` : `verify FAILED: ${result.badChunks.length} bad chunk(s), ${result.versions.filter((v) => !v.ok).length} version(s) affected`);
  return result.ok ? 0 : 1;
}
