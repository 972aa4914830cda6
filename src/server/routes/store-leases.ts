/**
 * Read leases of the remote datastore protocol (read-leases.ts says what they hold and for how long):
 * POST /api/v1/stores/{store}/guests/{id}/versions/{version}/lease, then
 * POST /api/v1/stores/{store}/leases/{lease}/keepalive and DELETE /api/v1/stores/{store}/leases/{lease}.
 * Each needs `versions.lease` on that store (admin, operator, or a backup token of that store; not audit,
 * which changes nothing); a lease is used only by who took it.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { startedBy } from '../auth/index.js';
import type { RouteContext } from '../context.js';
import type { ReadLeases } from '../read-leases.js';
import { responses } from '../schemas.js';
import { Leased, LeaseParams, VersionParams } from './store-schemas.js';
import { configuredStore } from './store-ref.js';

const tags = ['stores'];
const lease = { access: { action: 'versions.lease', store: (request: FastifyRequest) => (request.params as { store?: unknown }).store } } as const;

export function storeLeaseRoutes(app: FastifyInstance, ctx: RouteContext, leases: ReadLeases): void {
  app.post<{ Params: Static<typeof VersionParams> }>(
    '/api/v1/stores/:store/guests/:id/versions/:version/lease',
    {
      config: lease,
      schema: {
        summary: 'holds a version against prune while another node restores or verifies it (ends with DELETE or idle)',
        tags,
        params: VersionParams,
        response: responses({ 201: Leased }),
      },
    },
    async (request, reply) => {
      const { store, id, version } = request.params;
      const lease = await leases.take({ ref: configuredStore(ctx, store), principal: startedBy(request), guestId: id, version });
      return reply.code(201).send({ lease, idleTimeoutSeconds: leases.idleMs / 1000 });
    },
  );

  app.post<{ Params: Static<typeof LeaseParams> }>(
    '/api/v1/stores/:store/leases/:lease/keepalive',
    { config: lease, schema: { summary: "restarts a read lease's idle clock", tags, params: LeaseParams, response: responses({ 204: Type.Null() }) } },
    async (request, reply) => {
      leases.keepalive(request.params.lease, request.params.store, startedBy(request));
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: Static<typeof LeaseParams> }>(
    '/api/v1/stores/:store/leases/:lease',
    {
      config: lease,
      schema: { summary: 'ends a read lease: prune may remove the version again', tags, params: LeaseParams, response: responses({ 204: Type.Null() }) },
    },
    async (request, reply) => {
      await leases.release(request.params.lease, request.params.store, startedBy(request));
      return reply.code(204).send();
    },
  );
}
