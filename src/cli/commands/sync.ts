/** `coldvault sync --from NODE:STORE --to STORE [--vmid ID ...] [--keep N] [--json]` */
import { ColdvaultError, formatBytes, parseGuestId } from '../../core/index.js';
import { Catalog } from '../../catalog/index.js';
import { Datastore } from '../../datastore/index.js';
import { parseSyncSource, syncStore, type SyncedGuest, type SyncResult } from '../../pipeline/index.js';
import { clusterNode, remoteStoreOptions } from '../../targets/index.js';
import { intOption, list, required, type OptionSpec } from '../args.js';
import { storeDir } from '../config.js';
import type { CommandContext } from '../context.js';
import { abortOnSignals } from './job.js';

export const syncOptions: OptionSpec = {
  from: { type: 'string' },
  to: { type: 'string' },
  vmid: { type: 'string', multiple: true },
  keep: { type: 'string' },
  'lock-wait': { type: 'string' },
};

export const syncHelp = `coldvault sync --from NODE:STORE --to <dir> [--vmid 101,102]... [--keep N] [--lock-wait MINUTES] [--json]
  Pulls the versions that datastore --to lacks from datastore STORE on node NODE (a node of the config's
  cluster.nodes, with a token that may read that store), deduplicated (chunks here are not fetched) and
  verified (every chunk against its SHA-256 before it is stored). Versions keep their numbers; a number
  here is never overwritten. Without --vmid: every guest with versions there. --keep N: keep-N rotation here.`;

export async function syncCommand(ctx: CommandContext): Promise<number> {
  const from = required(ctx.args, 'from', 'sync');
  const source = parseSyncSource(from);
  if (!source) throw new ColdvaultError('USAGE', `coldvault sync: --from '${from}': expected NODE:STORE (a node of cluster.nodes, a datastore name there)`);
  const options = remoteStoreOptions(clusterNode(ctx.config.cluster, source.node), source.store);
  const ids = list(ctx.args, 'vmid').flatMap((v) => v.split(',').map((id) => parseGuestId(id.trim(), 'vmid')));
  const keep = intOption(ctx.args, 'keep', 1);
  const lockWaitMs = (intOption(ctx.args, 'lock-wait', 0) ?? 0) * 60_000;
  const store = await Datastore.open(storeDir(ctx.config, required(ctx.args, 'to', 'sync')));
  const catalog = await Catalog.open(store, { log: ctx.log });
  const abort = abortOnSignals(ctx);
  try {
    const guestIds = ids.length > 0 ? ids : undefined;
    const result = await syncStore({ source: options, from, store, catalog, guestIds, keep, lockWaitMs, log: ctx.log, signal: abort.signal });
    if (ctx.json) ctx.printJson(result);
    else ctx.print(describeResult(result));
    return result.ok ? 0 : 1;
  } finally {
    abort.dispose();
    catalog.close();
  }
}

function describeResult(r: SyncResult): string {
  const lines = r.guests.map(describeGuest);
  lines.push(
    `${r.chunks.fetched} chunk(s) fetched (${formatBytes(r.chunks.fetchedBytes)}), ${r.chunks.present} already here; ${formatBytes(r.wire.receivedBytes)} received on the wire`,
  );
  return lines.join('\n');
}

function describeGuest(g: SyncedGuest): string {
  const pulled = g.pulled.length > 0 ? `pulled version(s) ${g.pulled.join(', ')}` : 'nothing pulled';
  const failed = g.ok ? '' : `; FAILED: ${g.error ?? ''}`;
  return `guest ${g.id}: ${pulled}, ${g.present.length} here already${g.skipped.length ? `, ${g.skipped.length} skipped` : ''}${failed}`;
}
