/**
 * GET /api/v1/backups/{vmid}/{version}/screenshot?store=S: the PNG of the guest's screen at the end of
 * the version's last boot test (pipeline/boot-test keeps it in `<stateDir>/boot-tests/<datastore id>/`);
 * 404 when the version was never boot-tested here. Access as listing versions (`versions.read`,
 * store-scoped: a scoped token names no store and gets its own).
 */
import { readFile } from 'node:fs/promises';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { errnoCode } from '../../core/index.js';
import { screenshotPath } from '../../pipeline/index.js';
import { field } from '../auth/index.js';
import type { RouteContext } from '../context.js';
import { ApiError } from '../errors.js';
import { resolveStore } from '../paths.js';
import { responses, ScreenshotParams, ScreenshotQuery } from '../schemas.js';
import { withStore } from '../stores.js';

export function bootScreenRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get<{ Params: Static<typeof ScreenshotParams>; Querystring: Static<typeof ScreenshotQuery> }>(
    '/api/v1/backups/:vmid/:version/screenshot',
    {
      config: { access: { action: 'versions.read', store: field('query', 'store') } },
      schema: {
        summary: "the guest's screen at the end of the version's last boot test (PNG)",
        tags: ['backups'],
        params: ScreenshotParams,
        querystring: ScreenshotQuery,
        produces: ['image/png'],
        response: responses({ 200: Type.String() }),
      },
    },
    async (request, reply) => {
      const named = request.query.store ?? request.allowed?.onlyStore;
      if (!named) throw new ApiError('INVALID_REQUEST', 'screenshot: give the store (?store=)');
      const ref = resolveStore(named, ctx.config, ctx.state.jobs);
      const storeId = await withStore(ref, ctx.config, ({ store }) => store.identity.id);
      const { vmid, version } = request.params;
      const png = await readFile(screenshotPath(ctx.config.stateDir, storeId, vmid, version)).catch((err: unknown) => {
        if (errnoCode(err) !== 'ENOENT') throw err;
        throw new ApiError('NOT_FOUND', `guest ${vmid} version ${version} in '${named}' has no boot test screenshot`);
      });
      return reply.type('image/png').header('cache-control', 'no-store').send(png);
    },
  );
}
