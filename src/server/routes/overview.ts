/**
 * GET /api/v1/overview[?days=N]: the operator's view (jobs/overview): every guest's backup state and
 * flags, every store's space, usage per day and "full on" forecast, the jobs' runs and the external
 * disks they used over the last N days (default 90). This route only gathers: the guests dir, each
 * known store's catalog and free space (a store that does not open is listed with its error; a job's
 * external-disk folder with no disk attached is `detached`: its versions are on a disk carried away), the
 * jobs and their creation times, the task store's tasks and the log lines naming disks; buildOverview
 * computes the rest. Read access (audit and up), as the lists it summarises.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { describeError, isColdvaultError } from '../../core/index.js';
import { guestName, listGuestIds, readGuestConfig } from '../../guests/index.js';
import { buildOverview, deviceLogLines, jobCreatedTimes, type GuestRef, type JobRef, type StoreFacts, type VersionRef } from '../../jobs/index.js';
import type { CatalogVersion } from '../../catalog/index.js';
import type { RouteContext } from '../context.js';
import { knownStores, type KnownStore } from '../paths.js';
import { Overview, OverviewQuery, responses } from '../schemas.js';
import { withStore } from '../stores.js';

/** The task store keeps its newest 500 tasks; all of them are read. */
const TASKS_READ = 1000;
const DAY_MS = 86_400_000;

export function overviewRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get<{ Querystring: Static<typeof OverviewQuery> }>(
    '/api/v1/overview',
    {
      config: { access: { action: 'read' } },
      schema: {
        summary: "every guest's backup state and flags, the datastores' usage and full-on forecast, run history and disk rotation",
        tags: ['overview'],
        querystring: OverviewQuery,
        response: responses({ 200: Overview }),
      },
    },
    async (request) => {
      const now = new Date(ctx.clock());
      const historyDays = request.query.days ?? 90;
      const stores = knownStores(ctx.config, ctx.state.jobs);
      const [guests, facts] = await Promise.all([readGuests(ctx), Promise.all(stores.map((s) => storeFacts(ctx, s, diskSpecs(ctx, s))))]);
      return buildOverview({
        now,
        node: ctx.config.node,
        guests,
        stores: facts,
        jobs: jobRefs(ctx, stores),
        tasks: ctx.state.tasks.list(TASKS_READ),
        deviceLines: deviceLogLines(ctx.state.db, new Date(now.getTime() - historyDays * DAY_MS)),
        historyDays,
      });
    },
  );
}

/** The guests of the guests dir with their names (a config that does not read: no name). */
async function readGuests(ctx: RouteContext): Promise<GuestRef[]> {
  const ids = existsSync(ctx.config.guestsDir) ? await listGuestIds(ctx.config.guestsDir) : [];
  return Promise.all(
    ids.map(async (id) => {
      try {
        return { id, name: guestName((await readGuestConfig(ctx.config.guestsDir, id)).config) };
      } catch {
        return { id, name: '' };
      }
    }),
  );
}

/** The external disks of the jobs whose store is this folder (`job: specs`), empty when none has one. */
function diskSpecs(ctx: RouteContext, ref: KnownStore): string[] {
  if (ref.kind === 's3') return [];
  return ctx.state.jobs
    .list()
    .filter((j) => j.device && j.mode !== 'cluster' && resolve(j.store) === ref.dir)
    .map((j) => `job ${j.id}: ${j.device ?? ''}`);
}

/** A store's versions and space; one that does not open is listed with why (for an external disk's folder: no disk attached). */
async function storeFacts(ctx: RouteContext, ref: KnownStore, disks: readonly string[]): Promise<StoreFacts> {
  const base = { name: ref.name, dir: ref.dir, ...(ref.kind ? { kind: ref.kind } : {}) };
  try {
    return await withStore(ref, ctx.config, async (opened) => {
      const totals = opened.catalog.storeTotals();
      const versions = opened.catalog.listVersions().map((v) => versionRef(v, ref.name));
      const sizes = { logicalBytes: totals.logicalBytes, storedBytes: totals.storedBytes, versions };
      if (opened.kind === 's3') return { ...base, ...sizes, usedBytes: totals.storedBytes, freeBytes: null, totalBytes: null };
      const { free, total } = await opened.store.space();
      return { ...base, ...sizes, usedBytes: total - free, freeBytes: free, totalBytes: total };
    });
  } catch (err) {
    const detached = disks.length > 0 && isColdvaultError(err, 'NOT_A_DATASTORE');
    const error = detached ? `no external disk is attached on '${ref.dir}' now (${disks.join('; ')}): its versions are on the disk` : describeError(err);
    return {
      ...base,
      usedBytes: null,
      freeBytes: null,
      totalBytes: null,
      logicalBytes: 0,
      storedBytes: 0,
      versions: [],
      error,
      ...(detached ? { detached } : {}),
    };
  }
}

function versionRef(v: CatalogVersion, store: string): VersionRef {
  return {
    guestId: v.guestId,
    store,
    version: v.version,
    time: v.time,
    logicalBytes: v.logicalBytes,
    newBytes: v.newBytes,
    storedBytes: v.storedBytes,
    downtimeMs: v.downtimeMs,
    verifyState: v.verifyState,
    bootTestOk: v.bootTest ? v.bootTest.ok : null,
  };
}

/** The jobs, with when each was made and the name of the store its versions land in here (none for cluster mode: another node's). */
function jobRefs(ctx: RouteContext, stores: readonly KnownStore[]): JobRef[] {
  const created = jobCreatedTimes(ctx.state.db);
  return ctx.state.jobs.list().map((job) => {
    const store = job.mode === 'cluster' ? undefined : stores.find((s) => s.name === job.store || (s.kind !== 's3' && s.dir === resolve(job.store)));
    return { job, created: created.get(job.id), storeName: store?.name };
  });
}
