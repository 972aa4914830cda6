/** `coldvault sync --from SOURCE --to TARGET [--vmid ID ...] [--keep N] [--json]`: the sides in cli/sync-sides.ts */
import { formatBytes, parseGuestId } from '../../core/index.js';
import { Catalog } from '../../catalog/index.js';
import { Datastore, S3Datastore } from '../../datastore/index.js';
import {
  bucketSource,
  folderSource,
  FolderSink,
  nodeSource,
  S3Sink,
  syncStore,
  type PullSource,
  type SyncedGuest,
  type SyncResult,
  type SyncSink,
} from '../../pipeline/index.js';
import { clusterNode, ringStoreOptions } from '../../targets/index.js';
import { intOption, list, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';
import { s3Options } from '../s3-option.js';
import { syncSides, type SyncSide, type SyncTarget } from '../sync-sides.js';
import { abortOnSignals } from './job.js';

export const syncOptions: OptionSpec = {
  from: { type: 'string' },
  to: { type: 'string' },
  vmid: { type: 'string', multiple: true },
  keep: { type: 'string' },
  'lock-wait': { type: 'string' },
  ...s3Options,
};

export const syncHelp = `coldvault sync --from SOURCE --to TARGET [--vmid 101,102]... [--keep N] [--lock-wait MINUTES] [--json]
    [--endpoint URL] [--region R] [--path-style true|false]
  Copies the versions datastore TARGET lacks from datastore SOURCE, deduplicated (chunks TARGET has
  are not fetched) and verified (every chunk against its SHA-256 before it is stored). Versions keep
  their numbers; a number at TARGET is never overwritten. Without --vmid: every guest with versions in
  SOURCE. --keep N: keep-N rotation at TARGET.
  SOURCE: a datastore name of the config file (a folder or an S3 datastore), a folder by its absolute
  path (/mnt/usb1), s3://BUCKET/PREFIX, or NODE:STORE (datastore STORE on node NODE of cluster.nodes,
  with a token that may read it). TARGET: a datastore name of the config file, a folder, or
  s3://BUCKET/PREFIX. --endpoint, --region and --path-style describe the one side given as an s3://
  address (with both sides so, name one by its configured name instead); credentials from
  AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.`;

export async function syncCommand(ctx: CommandContext): Promise<number> {
  const sides = syncSides(ctx.args, ctx.config);
  const ids = list(ctx.args, 'vmid').flatMap((v) => v.split(',').map((id) => parseGuestId(id.trim(), 'vmid')));
  const keep = intOption(ctx.args, 'keep', 1);
  const lockWaitMs = (intOption(ctx.args, 'lock-wait', 0) ?? 0) * 60_000;
  if (sides.from.kind === 'node') clusterNode(ctx.config.cluster, sides.from.node); // an unknown node before anything is opened
  const target = await openTarget(ctx, sides.to);
  try {
    const source = await openSource(sides.from, sides.fromText, ctx);
    const abort = abortOnSignals(ctx);
    try {
      const guestIds = ids.length > 0 ? ids : undefined;
      const result = await syncStore({ source, sink: target.sink, guestIds, keep, lockWaitMs, log: ctx.log, signal: abort.signal });
      if (ctx.json) ctx.printJson(result);
      else ctx.print(describeResult(result));
      return result.ok ? 0 : 1;
    } finally {
      abort.dispose();
      source.close();
    }
  } finally {
    target.close();
  }
}

async function openSource(side: SyncSide, label: string, ctx: CommandContext): Promise<PullSource> {
  if (side.kind === 'node') return nodeSource(ringStoreOptions(ctx.config.cluster, side.node, side.store), label, side.node);
  if (side.kind === 'folder') return folderSource(await Datastore.open(side.dir), label);
  return bucketSource(await S3Datastore.open(side.settings), label);
}

async function openTarget(ctx: CommandContext, side: SyncTarget): Promise<{ sink: SyncSink; close: () => void }> {
  if (side.kind === 's3') {
    const { store, catalog } = await ctx.openS3Store(side.settings); // closed with the context
    return { sink: new S3Sink(store, catalog), close: () => undefined };
  }
  const store = await Datastore.open(side.dir);
  const catalog = await Catalog.open(store, { log: ctx.log });
  return { sink: new FolderSink(store, catalog), close: () => catalog.close() };
}

function describeResult(r: SyncResult): string {
  const lines = r.guests.map(describeGuest);
  const wire = r.wire.requests > 0 ? `; ${formatBytes(r.wire.receivedBytes)} received on the wire` : '';
  lines.push(`${r.chunks.fetched} chunk(s) fetched (${formatBytes(r.chunks.fetchedBytes)}), ${r.chunks.present} already here${wire}`);
  return lines.join('\n');
}

function describeGuest(g: SyncedGuest): string {
  const pulled = g.pulled.length > 0 ? `pulled version(s) ${g.pulled.join(', ')}` : 'nothing pulled';
  const failed = g.ok ? '' : `; FAILED: ${g.error ?? ''}`;
  return `guest ${g.id}: ${pulled}, ${g.present.length} here already${g.skipped.length ? `, ${g.skipped.length} skipped` : ''}${failed}`;
}
