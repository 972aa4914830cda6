/**
 * `coldvault list [<vmid>] --store <dir> [--json]`; with `--remote NODE` the versions of datastore
 * --store on that node of the cluster, as its server lists them (remote-read.ts).
 */
import { formatBytes, parseGuestId } from '../../core/index.js';
import { versionJson } from '../../catalog/index.js';
import type { RemoteStore } from '../../targets/index.js';
import type { OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';
import { REMOTE_HELP, remoteRef, remoteStore } from './remote-read.js';

export const listOptions: OptionSpec = { store: { type: 'string' }, remote: { type: 'string' } };
export const listHelp = `coldvault list [<vmid>] --store <dir> [--remote NODE] [--json]
  Lists the versions in a datastore (all guests, or one).
${REMOTE_HELP}`;

/** What a line shows of a version (`coldvault list --json` has every field). */
interface Listed {
  id: string;
  version: number;
  time: string;
  name: string;
  logicalBytes: number;
  storedBytes: number;
  verifyState: string;
  protected: boolean;
}

export async function listCommand(ctx: CommandContext): Promise<number> {
  const guestId = ctx.args.positionals[0] ? parseGuestId(ctx.args.positionals[0], 'vmid') : undefined;
  const remote = remoteRef(ctx);
  if (remote) {
    const versions = await remoteVersions(remoteStore(ctx, remote), guestId);
    show(ctx, versions, versions);
  } else {
    const versions = (await ctx.openStore()).catalog.listVersions(guestId);
    show(
      ctx,
      versions.map(versionJson),
      versions.map((v) => ({ ...v, id: v.guestId })),
    );
  }
  return 0;
}

function show(ctx: CommandContext, json: unknown[], lines: Listed[]): void {
  if (ctx.json) ctx.printJson(json);
  else ctx.print(lines.length === 0 ? 'no backups' : lines.map(toLine).join('\n'));
}

/** The versions of one guest, or of every guest with versions, in the remote store. */
async function remoteVersions(remote: RemoteStore, guestId: string | undefined): Promise<Listed[]> {
  try {
    const guests = guestId ? [guestId] : await remote.listGuests();
    const lists = [];
    for (const id of guests) lists.push(await remote.listVersions(id));
    return lists.flat();
  } finally {
    remote.close();
  }
}

function toLine(v: Listed): string {
  const date = v.time.slice(0, 10);
  const flags = [v.verifyState, v.protected ? 'protected' : ''].filter(Boolean).join(', ');
  return `ID: ${v.id}, Version: ${v.version} (${date}), name: ${v.name || '-'}, size: ${formatBytes(v.logicalBytes)}, new: ${formatBytes(v.storedBytes)}, ${flags}`;
}
