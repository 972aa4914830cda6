/** `coldvault list [<vmid>] --store <dir> [--json]` */
import { formatBytes, parseGuestId } from '../../core/index.js';
import { versionJson, type CatalogVersion } from '../../catalog/index.js';
import type { OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';

export const listOptions: OptionSpec = { store: { type: 'string' } };
export const listHelp = `coldvault list [<vmid>] --store <dir> [--json]
  Lists the versions in a datastore (all guests, or one).`;

export async function listCommand(ctx: CommandContext): Promise<number> {
  const guestId = ctx.args.positionals[0] ? parseGuestId(ctx.args.positionals[0], 'vmid') : undefined;
  const { catalog } = await ctx.openStore();
  const versions = catalog.listVersions(guestId);
  if (ctx.json) ctx.printJson(versions.map(versionJson));
  else ctx.print(versions.length === 0 ? 'no backups' : versions.map(toLine).join('\n'));
  return 0;
}

function toLine(v: CatalogVersion): string {
  const date = v.time.slice(0, 10);
  const flags = [v.verifyState, v.protected ? 'protected' : ''].filter(Boolean).join(', ');
  return `ID: ${v.guestId}, Version: ${v.version} (${date}), name: ${v.name || '-'}, size: ${formatBytes(v.logicalBytes)}, new: ${formatBytes(v.storedBytes)}, ${flags}`;
}
