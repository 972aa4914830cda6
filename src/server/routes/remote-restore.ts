/**
 * The Restore tab on other nodes' datastores (cluster mode: a node died, its guests are restored here
 * from the node that holds their backups). GET /api/v1/restore/nodes: this node and the nodes of the
 * config's `cluster.nodes` (names and URLs, never tokens). GET /api/v1/backups?remote=NODE&store=STORE
 * (&guest=ID): the versions in datastore STORE (its name there) on NODE. POST /api/v1/restore with
 * `remote: NODE` and `fromPath: STORE`: the restore as a task, every chunk read through NODE's serve
 * and checked here, the restore's lock in this node's state dir; no read lease on NODE (a prune there
 * meanwhile fails the restore with CHUNK_MISSING; nothing is left behind).
 *
 * Roles: the remote listing and restore are operator actions (`restore`): this node's token for NODE
 * is used on the principal's behalf. An unknown NODE is INVALID_REQUEST naming the listed nodes; NODE's
 * refusals (REMOTE_FORBIDDEN, REMOTE_UNAUTHORIZED, VERSION_NOT_FOUND ...) reach the client unchanged.
 * An encrypted version's key is a key file on THIS node (the request's keyFile inside keyDirs here):
 * the chunks are opened here, NODE never sees the key. `live: true` works alike (live-restore.ts);
 * its journal names no store, so serve does not resume it (it says how to).
 */
import { join } from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isColdvaultError } from '../../core/index.js';
import { LockDir } from '../../datastore/index.js';
import type { VersionKey } from '../../format/index.js';
import { openRemoteSource, type RestoreRequest } from '../../pipeline/index.js';
import { clusterNode, RemoteStore, type RemoteVersion, ringPlace, ringStoreOptions } from '../../targets/index.js';
import { authorize, startedBy } from '../auth/index.js';
import type { RouteContext } from '../context.js';
import { ApiError } from '../errors.js';
import { checkVersionKey } from '../request-key.js';
import { type LiveSettings, runRestore } from './live-restore.js';
import { responses, type BackupsQuery, type RestoreBody } from '../schemas.js';

const RestoreNodes = Type.Object({
  self: Type.String({ description: "this node's name (config `node`)" }),
  nodes: Type.Array(Type.Object({ name: Type.String(), url: Type.String() }), { description: 'the other nodes of cluster.nodes, in ring order' }),
  sendsTo: Type.Optional(
    Type.String({ description: "the node this node's cluster-mode jobs push to (the previous one of the ring); absent when this node is not in a ring" }),
  ),
});

export function remoteRestoreRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get(
    '/api/v1/restore/nodes',
    {
      config: { access: { action: 'read' } },
      schema: { summary: 'the nodes whose datastores a restore can read', tags: ['backups'], response: responses({ 200: RestoreNodes }) },
    },
    () => ({
      self: ctx.config.node,
      nodes: (ctx.config.cluster?.nodes ?? []).filter((n) => n.name !== ctx.config.node).map((n) => ({ name: n.name, url: n.url })),
      sendsTo: sendsTo(ctx),
    }),
  );
}

/** The previous node of the ring, or undefined when this node is not in one. */
function sendsTo(ctx: RouteContext): string | undefined {
  try {
    return ringPlace(ctx.config.cluster, ctx.config.node).sendsTo.name;
  } catch {
    return undefined;
  }
}

/** The versions in datastore `query.store` on node `query.remote` (of one guest, or of all). */
export async function listRemoteBackups(ctx: RouteContext, request: FastifyRequest, query: Static<typeof BackupsQuery>): Promise<RemoteVersion[]> {
  authorize(request, 'restore', undefined, ': reading the backups of another node is part of restoring');
  const remote = new RemoteStore(ringStoreOptions(ctx.config.cluster, remoteNode(ctx, query.remote ?? '').name, storeThere(query.store)));
  try {
    const guests = query.guest ? [query.guest] : await remote.listGuests();
    const lists: RemoteVersion[][] = [];
    for (const id of guests) lists.push(await remote.listVersions(id));
    return lists.flat();
  } finally {
    remote.close();
  }
}

interface RemoteRestoreExtras {
  dropKeys?: { keys: readonly string[]; why: string };
  /** the key of an encrypted version (the request's keyFile, opened on this node) */
  key?: VersionKey;
  /** the new ID's checks (free, or force and stopped; the target storage known) */
  checkTarget: () => Promise<void>;
  /** `live: true`: a restore-on-the-fly with these settings (live-restore.ts) */
  live?: LiveSettings;
}

/** Starts a restore of `body.id` version `body.version` from datastore `body.fromPath` on node `body.remote`. */
export async function startRemoteRestore(
  ctx: RouteContext,
  request: FastifyRequest,
  body: Static<typeof RestoreBody>,
  extras: RemoteRestoreExtras,
): Promise<{ taskId: string }> {
  if (body.fromDevice) throw new ApiError('INVALID_REQUEST', "restore: fromDevice is a disk at this node; it does not go with 'remote'");
  const node = remoteNode(ctx, body.remote ?? '').name;
  const source = openRemoteSource(ctx.config.cluster, node, storeThere(body.fromPath));
  try {
    checkVersionKey(await source.readManifest(body.id, body.version), extras.key, { guestId: body.id, version: body.version });
    await extras.checkTarget();
  } catch (err) {
    source.close();
    throw err;
  }
  const summary = `${extras.live ? 'live ' : ''}restore guest ${body.id} version ${body.version} as ${body.newId} from ${source.describe}`;
  const { taskId } = ctx.runner.startTask(
    'restore',
    summary,
    async ({ task, pool, onProgress, signal }) => {
      try {
        const asked: RestoreRequest = {
          source,
          locks: new LockDir(join(ctx.config.stateDir, 'locks')),
          pool: pool(),
          guestId: body.id,
          version: body.version,
          newId: body.newId,
          key: extras.key,
          guestsDir: ctx.config.guestsDir,
          storages: ctx.config.storages,
          targetStorage: body.targetStorage,
          unique: body.unique ?? false,
          force: body.force ?? false,
          log: task,
          onProgress,
          signal,
          dropKeys: extras.dropKeys,
        };
        const r = await runRestore(asked, extras.live, { abort: signal }); // no store name in a live journal: serve does not resume another node's
        const result = { id: body.id, version: body.version, newId: body.newId, remote: node, store: body.fromPath };
        return { ok: true, result: { ...result, config: r.configPath, volumes: Object.fromEntries(r.volumes), live: r.live } };
      } finally {
        source.close();
      }
    },
    startedBy(request),
  );
  return { taskId };
}

/** The node named `name` in the config's cluster.nodes; INVALID_REQUEST naming the listed ones otherwise. */
function remoteNode(ctx: RouteContext, name: string): ReturnType<typeof clusterNode> {
  try {
    return clusterNode(ctx.config.cluster, name);
  } catch (err) {
    if (isColdvaultError(err, 'CONFIG_INVALID')) throw new ApiError('INVALID_REQUEST', err.message);
    throw err;
  }
}

function storeThere(store: string | undefined): string {
  if (!store) throw new ApiError('INVALID_REQUEST', "a remote node's backups: give the datastore's name on that node (store, or fromPath for a restore)");
  return store;
}
