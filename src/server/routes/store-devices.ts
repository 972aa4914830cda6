/**
 * An external disk at the receiving node (cluster mode; the rules are in ../store-devices.ts):
 *   POST   /api/v1/stores/{store}/device                         {device, init?, datastoreIds?}
 *          -> 201 {attachment, device, datastoreId, initialised, idleTimeoutSeconds, log}
 *   POST   /api/v1/stores/{store}/device/{attachment}/keepalive  -> 204 (the sender is alive)
 *   DELETE /api/v1/stores/{store}/device/{attachment}            -> 204 (synced and unmounted)
 * Each needs `store.write` on that store (its `backup` token, or an admin); what may be mounted is
 * this node's config `storeDevices`, not the request. An S3 datastore has no folder a disk could be
 * mounted on: DEVICE_NOT_ALLOWED, naming this node and the store.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ColdvaultError } from '../../core/index.js';
import { startedBy } from '../auth/index.js';
import type { RouteContext } from '../context.js';
import { responses } from '../schemas.js';
import type { DeviceAsker, StoreDevices } from '../store-devices.js';
import { StoreParams } from './store-schemas.js';
import { configuredStore } from './store-ref.js';

const tags = ['stores'];
const write = { access: { action: 'store.write', store: (request: FastifyRequest) => (request.params as { store?: unknown }).store } } as const;

const AttachmentParams = Type.Object({
  store: StoreParams.properties.store,
  attachment: Type.String({ pattern: '^[A-Za-z0-9_-]{22}$', description: 'the id POST .../device answered' }),
});
const AttachBody = Type.Object(
  {
    device: Type.String({
      minLength: 1,
      maxLength: 4096,
      description: "the sending job's disk, or rotated disks separated by commas (UUID=..., LABEL=..., /dev/...)",
    }),
    init: Type.Optional(Type.Boolean({ default: false, description: "an empty disk may be initialised (the job's --init-device)" })),
    datastoreIds: Type.Optional(
      Type.Array(Type.String({ pattern: '^[A-Za-z0-9-]{1,64}$' }), {
        maxItems: 64,
        description: 'the datastores the sending job is bound to, one per disk met',
      }),
    ),
  },
  { additionalProperties: false },
);
const Attached = Type.Object({
  attachment: Type.String(),
  device: Type.String({ description: 'the disk mounted: of those asked for, the first one attached' }),
  datastoreId: Type.String(),
  initialised: Type.Boolean(),
  idleTimeoutSeconds: Type.Number({ description: 'the disk is let go after this long without a keep-alive (and without an open upload)' }),
  log: Type.Array(Type.String(), { description: 'what this node logged up to the mount' }),
});

export function storeDeviceRoutes(app: FastifyInstance, ctx: RouteContext, devices: StoreDevices): void {
  attachRoute(app, ctx, devices);
  keepAliveRoute(app, devices);
  detachRoute(app, devices);
}

function attachRoute(app: FastifyInstance, ctx: RouteContext, devices: StoreDevices): void {
  app.post<{ Params: Static<typeof StoreParams>; Body: Static<typeof AttachBody> }>(
    '/api/v1/stores/:store/device',
    {
      config: write,
      schema: {
        summary: "mounts a sending job's external disk on the store's folder (only disks this node's config storeDevices lists for the store)",
        tags,
        params: StoreParams,
        body: AttachBody,
        response: responses({ 201: Attached }),
      },
    },
    async (request, reply) => {
      const { store } = request.params;
      const ref = configuredStore(ctx, store); // NOT_FOUND naming the node for a store it does not have
      if (ref.kind === 's3') {
        throw new ColdvaultError(
          'DEVICE_NOT_ALLOWED',
          `node ${ctx.config.node} refuses to mount an external disk: datastore '${store}' there is an S3 datastore (${ref.dir}), not a folder a disk could be mounted on; push without --device, nothing was mounted`,
        );
      }
      const { device, init = false, datastoreIds = [] } = request.body;
      const answer = await devices.attach({ store, principal: startedBy(request), device, init, datastoreIds });
      return reply.code(201).send(answer);
    },
  );
}

function keepAliveRoute(app: FastifyInstance, devices: StoreDevices): void {
  app.post<{ Params: Static<typeof AttachmentParams> }>(
    '/api/v1/stores/:store/device/:attachment/keepalive',
    {
      config: write,
      schema: {
        summary: 'the sender is alive: its disk stays mounted for another idle time',
        tags,
        params: AttachmentParams,
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      devices.keepAlive(request.params.attachment, askerOf(request));
      return reply.code(204).send();
    },
  );
}

function detachRoute(app: FastifyInstance, devices: StoreDevices): void {
  app.delete<{ Params: Static<typeof AttachmentParams> }>(
    '/api/v1/stores/:store/device/:attachment',
    {
      config: write,
      schema: {
        summary: 'syncs and unmounts the disk (LOCKED while an upload into the store is open; an attachment that ended already: 204)',
        tags,
        params: AttachmentParams,
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await devices.detach(request.params.attachment, askerOf(request));
      return reply.code(204).send();
    },
  );
}

function askerOf(request: FastifyRequest): DeviceAsker {
  return { store: (request.params as { store: string }).store, principal: startedBy(request) };
}
