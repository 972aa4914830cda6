/**
 * Versions and what is done with them: GET /api/v1/backups (?guest, ?store; without a store: every
 * known store that opens), POST /api/v1/verify -> 202 {taskId}, POST /api/v1/prune -> 200 {removed}
 * (a short task, for the record), POST /api/v1/restore -> 202 {taskId} (its log ends `restore
 * successful`). Cheap checks (store allowed and a datastore, version present, new id free and not
 * running) answer at once; the work runs as a task.
 *
 * Roles: listing versions is store-scoped (`versions.read`: a backup token sees its own store only);
 * verify and restore are operator actions, prune and restore with `force` admin ones. A restore by a
 * principal that may not restore `args:` / `hookscript:` leaves them out and says so in its log.
 * With `remote: NODE` both read another node's datastore (remote-restore.ts). With `live: true` (and
 * `bwlimit`) the restore is a restore-on-the-fly under the qemu driver (live-restore.ts). A version's boot test
 * screenshot: GET /api/v1/backups/{vmid}/{version}/screenshot (boot-screens.ts).
 *
 * A store is a folder or a configured S3 datastore (by name or its `s3://BUCKET/PREFIX/`): listing,
 * verify, prune and restore work on both alike (stores.ts opens either; a bucket's catalog is the
 * state dir's cache); an external device goes with a folder only.
 *
 * Encrypted versions (issue 13): verify and restore take `keyFile` (and `passphraseFile`), paths
 * inside the config's keyDirs, opened before the task starts (request-key.ts); a restore is refused
 * at once without the version's key (KEY_REQUIRED) or with another (KEY_WRONG). Verify without the
 * key checks CRC and structure and its result lists those versions in `contentUnchecked`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ColdvaultError } from '../../core/index.js';
import { Datastore, hasRetention, LockDir, type PruneOptions } from '../../datastore/index.js';
import { guestConfigPath } from '../../guests/index.js';
import { DeviceSightings, diskGuests } from '../../jobs/index.js';
import { versionJson } from '../../catalog/index.js';
import { pruneGuest, pruneS3Guest, type RestoreRequest, s3Source, sourceOf, type SourceRef, verifyStore } from '../../pipeline/index.js';
import { authorize, field, may, PRIVILEGED_CONFIG_KEYS, startedBy } from '../auth/index.js';
import type { RouteContext } from '../context.js';
import { ApiError } from '../errors.js';
import { checkDevice, type KnownStore, knownStores, resolveStore } from '../paths.js';
import { checkVersionKey, requestKey } from '../request-key.js';
import { type BlockDevice, mountDevice, resolveDevice, unmountDevice, unreplayedJournalWarning } from '../../targets/index.js';
import { BackupsQuery, PruneBody, PruneResult, responses, RestoreBody, TaskAccepted, VerifyBody, Version } from '../schemas.js';
import { openS3, withStore } from '../stores.js';
import { bootScreenRoutes } from './boot-screens.js';
import { liveSettingsOf, runRestore } from './live-restore.js';
import { listRemoteBackups, remoteRestoreRoutes, startRemoteRestore } from './remote-restore.js';

export function backupRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const tags = ['backups'];
  app.get<{ Querystring: Static<typeof BackupsQuery> }>(
    '/api/v1/backups',
    {
      config: { access: { action: 'versions.read', store: field('query', 'store') } },
      schema: {
        summary: 'versions (as `coldvault list --json`, plus `store`)',
        tags,
        querystring: BackupsQuery,
        response: responses({ 200: Type.Array(Version) }),
      },
    },
    async (request) => (request.query.remote ? listRemoteBackups(ctx, request, request.query) : listBackups(ctx, request.query, request.allowed?.onlyStore)),
  );

  app.post<{ Body: Static<typeof VerifyBody> }>(
    '/api/v1/verify',
    {
      config: { access: { action: 'verify', store: field('body', 'store') } },
      schema: {
        summary: 're-reads every chunk of a store (or a guest, or a version) as a task',
        tags,
        body: VerifyBody,
        response: responses({ 202: TaskAccepted }),
      },
    },
    async (request, reply) => reply.code(202).send(await startVerify(ctx, request.body, startedBy(request))),
  );

  app.post<{ Body: Static<typeof PruneBody> }>(
    '/api/v1/prune',
    {
      config: { access: { action: 'prune', store: field('body', 'store') } },
      schema: { summary: 'removes the versions of a guest that no keep rule covers', tags, body: PruneBody, response: responses({ 200: PruneResult }) },
    },
    async (request) => prune(ctx, request.body, startedBy(request)),
  );

  app.post<{ Body: Static<typeof RestoreBody> }>(
    '/api/v1/restore',
    {
      config: { access: { action: 'restore', store: field('body', 'fromPath') } },
      schema: { summary: 'restores a version under a new guest id as a task', tags, body: RestoreBody, response: responses({ 202: TaskAccepted }) },
    },
    async (request, reply) => reply.code(202).send(await startRestore(ctx, request, request.body)),
  );
  remoteRestoreRoutes(app, ctx);
  bootScreenRoutes(app, ctx);
}

/** Every known store's versions, or one store's; `onlyStore` (a scoped grant) narrows it to that store. */
async function listBackups(ctx: RouteContext, query: Static<typeof BackupsQuery>, onlyStore?: string): Promise<unknown[]> {
  const list = (ref: KnownStore): Promise<unknown[]> =>
    withStore(ref, ctx.config, ({ catalog }) => catalog.listVersions(query.guest).map((v) => ({ ...versionJson(v), store: ref.dir })));
  const named = query.store ?? onlyStore;
  if (named) return list(resolveStore(named, ctx.config, ctx.state.jobs));
  const all = await Promise.all(knownStores(ctx.config, ctx.state.jobs).map((s) => list(s).catch(() => [])));
  return all.flat();
}

async function startVerify(ctx: RouteContext, body: Static<typeof VerifyBody>, by: string): Promise<{ taskId: string }> {
  if (body.version !== undefined && body.guest === undefined) throw new ApiError('INVALID_REQUEST', 'verify: a version needs a guest');
  const ref = resolveStore(body.store, ctx.config, ctx.state.jobs);
  const key = await requestKey(ctx.config, body, 'verify');
  await checkOpens(ref, ctx);
  const what = body.guest ? `guest ${body.guest}${body.version ? ` version ${body.version}` : ''}` : 'all versions';
  const { taskId } = ctx.runner.startTask(
    'verify',
    `verify ${what} in ${ref.dir}`,
    ({ task, pool, onProgress }) =>
      withStore(
        ref,
        ctx.config,
        async (opened) => {
          const from: SourceRef = opened.kind === 's3' ? { source: s3Source(opened.store) } : { store: opened.store };
          const wanted = { guestId: body.guest, version: body.version };
          const result = await verifyStore({ ...from, catalog: opened.catalog, pool: pool(), ...wanted, key, log: task, onProgress });
          return { ok: result.ok, result };
        },
        task,
      ),
    by,
  );
  return { taskId };
}

async function prune(ctx: RouteContext, body: Static<typeof PruneBody>, by: string): Promise<Static<typeof PruneResult>> {
  const { store: storeRef, guest, dryRun = false, ...keep } = body;
  const options: PruneOptions = keep;
  if (!hasRetention(options)) throw new ApiError('INVALID_REQUEST', 'prune: give at least one keep rule above 0 (prune never removes everything)');
  const ref = resolveStore(storeRef, ctx.config, ctx.state.jobs);
  await checkOpens(ref, ctx);
  let removed: number[] = [];
  let failure: unknown;
  const { taskId, done } = ctx.runner.startTask(
    'prune',
    `prune guest ${guest} in ${ref.dir}`,
    ({ task }) =>
      withStore(
        ref,
        ctx.config,
        async (opened) => {
          const request = { catalog: opened.catalog, guestId: guest, options, log: task, dryRun };
          const pruning = opened.kind === 's3' ? pruneS3Guest({ ...request, store: opened.store }) : pruneGuest({ ...request, store: opened.store });
          removed = await pruning.catch((err: unknown) => {
            failure = err;
            throw err;
          });
          return { ok: true, result: { removed, dryRun } };
        },
        task,
      ),
    by,
  );
  if (!(await done)) throw failure instanceof Error ? failure : new ApiError('INTERNAL', `prune failed; see task ${taskId}`);
  return { removed, dryRun, taskId };
}

async function startRestore(ctx: RouteContext, request: FastifyRequest, body: Static<typeof RestoreBody>): Promise<{ taskId: string }> {
  if (!body.fromPath) throw new ApiError('INVALID_REQUEST', 'restore: give fromPath (a datastore name or folder; with fromDevice, where the disk is mounted)');
  const live = await liveSettingsOf(ctx, body);
  if (body.force) authorize(request, 'restore.force');
  const dropKeys = configKeysToDrop(request);
  const key = await requestKey(ctx.config, body, 'restore');
  if (body.remote) return startRemoteRestore(ctx, request, body, { dropKeys, key, live, checkTarget: () => checkRestoreTarget(ctx, body) });
  const ref = resolveStore(body.fromPath, ctx.config, ctx.state.jobs);
  if (ref.kind === 's3' && body.fromDevice)
    throw new ApiError('INVALID_REQUEST', `restore: fromDevice goes with a folder datastore, not the S3 datastore '${ref.name}'`);
  const dir = ref.dir;
  const mounted = body.fromDevice ? await mountReadOnly(body.fromDevice, dir) : undefined;
  const detach = mounted?.detach;
  let from: SourceRef;
  try {
    from = ref.kind === 's3' ? { source: s3Source(await openS3(ref, ctx.config)) } : { store: await Datastore.open(dir) };
  } catch (err) {
    await detach?.();
    throw err;
  }
  if (mounted && from.store) await recordSighting(ctx, mounted.device, from.store);
  const source = sourceOf(from);
  try {
    checkVersionKey(await source.readManifest(body.id, body.version), key, { guestId: body.id, version: body.version });
    await checkRestoreTarget(ctx, body);
  } catch (err) {
    source.close();
    await detach?.();
    throw err;
  }
  const summary = `${live ? 'live ' : ''}restore guest ${body.id} version ${body.version} as ${body.newId}${body.fromDevice ? ` from ${body.fromDevice}` : ''}`;
  const { taskId } = ctx.runner.startTask(
    'restore',
    summary,
    async ({ task, pool, onProgress, signal }) => {
      if (mounted) task.info(`mounted ${body.fromDevice} read-only on '${dir}', without journal replay: the disk is not changed`);
      if (mounted?.warning) task.warn(mounted.warning);
      try {
        const asked: RestoreRequest = {
          ...from,
          pool: pool(),
          guestId: body.id,
          version: body.version,
          newId: body.newId,
          key,
          guestsDir: ctx.config.guestsDir,
          storages: ctx.config.storages,
          targetStorage: body.targetStorage,
          unique: body.unique ?? false,
          force: body.force ?? false,
          log: task,
          onProgress,
          signal,
          dropKeys,
          locks: detach || ref.kind === 's3' ? new LockDir(join(ctx.config.stateDir, 'locks')) : undefined,
        };
        const r = await runRestore(asked, live, { abort: signal, storeName: body.fromPath });
        const result = { id: body.id, version: body.version, newId: body.newId, config: r.configPath, volumes: Object.fromEntries(r.volumes), live: r.live };
        return { ok: true, result };
      } finally {
        source.close();
        if (detach) {
          await detach();
          task.info(`unmounted ${body.fromDevice}: the disk may now be removed`);
        }
      }
    },
    startedBy(request),
  );
  return { taskId };
}

/** The archived config keys this principal may not restore (args:, hookscript: for all but admin), and why. */
function configKeysToDrop(request: FastifyRequest): { keys: readonly string[]; why: string } | undefined {
  if (may(request, 'restore.privileged-config')) return undefined;
  return {
    keys: PRIVILEGED_CONFIG_KEYS,
    why: `${startedBy(request)} (role '${request.principal?.grant.role}') may not restore them; Proxmox lets only root set these keys`,
  };
}

/** An external disk, mounted read-only (no journal replay: the disk is not changed) on the datastore folder for a restore. */
async function mountReadOnly(spec: string, dir: string): Promise<{ device: BlockDevice; detach: () => Promise<void>; warning?: string }> {
  checkDevice(spec);
  const device = await resolveDevice(spec);
  const warning = await unreplayedJournalWarning(device);
  await mountDevice(device, dir, { readOnly: true });
  return { device, detach: () => unmountDevice(dir), warning };
}

/** What the disk mounted for a restore holds (the Restore tab's disks); never fails the restore. */
async function recordSighting(ctx: RouteContext, device: BlockDevice, store: Datastore): Promise<void> {
  try {
    new DeviceSightings(ctx.state.db).record(device, { datastoreId: store.identity.id, dir: store.dir, guests: await diskGuests(store.dir), by: 'restore' });
  } catch {
    // a hint for the Restore tab only
  }
}

async function checkRestoreTarget(ctx: RouteContext, body: Static<typeof RestoreBody>): Promise<void> {
  if (body.targetStorage !== undefined && !Object.hasOwn(ctx.config.storages, body.targetStorage)) {
    throw new ColdvaultError(
      'STORAGE_UNKNOWN',
      `target storage '${body.targetStorage}' is not configured (known: ${Object.keys(ctx.config.storages).join(', ') || 'none'})`,
    );
  }
  if (!existsSync(guestConfigPath(ctx.config.guestsDir, body.newId))) return;
  if (!body.force) throw new ColdvaultError('GUEST_ID_TAKEN', `guest ID ${body.newId} is already in use; choose another newId or set force`);
  if ((await ctx.driver.status(body.newId).catch(() => 'unknown')) !== 'stopped') {
    throw new ColdvaultError('GUEST_ID_TAKEN', `guest ${body.newId} is not known to be stopped; stop it before restoring over it`);
  }
}

/** Opens the store once before a task starts, so that a store that is not a datastore (or a bucket that cannot be reached) is refused at once. */
async function checkOpens(ref: KnownStore, ctx: RouteContext): Promise<void> {
  if (ref.kind === 's3') (await openS3(ref, ctx.config)).close();
  else await Datastore.open(ref.dir);
}
