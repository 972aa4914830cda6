/**
 * `--remote NODE --store STORE` of list, restore and verify: datastore STORE (its name there) on the
 * node named NODE in the config's `cluster.nodes`, read through that node's `coldvault serve` with the
 * token and pinned fingerprint listed there. An unknown NODE is CONFIG_INVALID naming the listed nodes;
 * the node's refusals (REMOTE_FORBIDDEN, REMOTE_UNAUTHORIZED, ...) reach the user as the node said them.
 */
import { join } from 'node:path';
import { ColdvaultError } from '../../core/index.js';
import { LockDir } from '../../datastore/index.js';
import { RemoteStore, ringStoreOptions } from '../../targets/index.js';
import { required, str } from '../args.js';
import type { CommandContext } from '../context.js';

export const REMOTE_HELP = `  With --remote NODE (a node of the config's cluster.nodes) --store names the datastore on that node,
  read through its coldvault serve with the token and fingerprint listed there.`;

export interface RemoteRef {
  node: string;
  store: string;
}

/** The `--remote NODE --store STORE` of the command line, or undefined without --remote. */
export function remoteRef(ctx: CommandContext): RemoteRef | undefined {
  const node = str(ctx.args, 'remote');
  if (node === undefined) return undefined;
  if (node === '') throw new ColdvaultError('USAGE', `coldvault ${ctx.command}: --remote needs the name of a node of the config's cluster.nodes`);
  return { node, store: required(ctx.args, 'store', ctx.command) };
}

/** A client of datastore `ref.store` on node `ref.node` (CONFIG_INVALID naming the listed nodes when there is no such node). */
export function remoteStore(ctx: CommandContext, ref: RemoteRef): RemoteStore {
  return new RemoteStore(ringStoreOptions(ctx.config.cluster, ref.node, ref.store));
}

/** This node's own lock folder (the state dir's): a remote store has none for this node's restores. */
export function stateLocks(ctx: CommandContext): LockDir {
  return new LockDir(join(ctx.config.stateDir, 'locks'));
}
