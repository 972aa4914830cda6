/**
 * GET /api/v1/devices: attached, unmounted external disks (with `?all=true` also loop devices and
 * fixed disks), each with the id of the coldvault datastore it holds: the "external device" choice of
 * the job form and the Restore tab.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { listDevices } from '../../targets/index.js';
import type { RouteContext } from '../context.js';
import { responses } from '../schemas.js';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

const Device = Type.Object({
  path: Type.String(), size: Type.Integer(), fstype: Nullable(Type.String()), label: Nullable(Type.String()), uuid: Nullable(Type.String()),
  model: Nullable(Type.String()), serial: Nullable(Type.String()), type: Type.String(), transport: Nullable(Type.String()),
  datastore: Type.Union([Type.Object({ id: Type.String() }), Type.Null()]), probeError: Type.Optional(Type.String()),
});

export function deviceRoutes(app: FastifyInstance, _ctx: RouteContext): void {
  app.get('/api/v1/devices', {
    config: { access: { action: 'read' } },
    schema: {
      summary: 'unmounted external disks, with the coldvault datastore each holds', tags: ['devices'],
      querystring: Type.Object({ all: Type.Optional(Type.Boolean({ default: false })) }, { additionalProperties: false }),
      response: responses({ 200: Type.Array(Device) }),
    },
  }, async (request) => listDevices({ all: (request.query as { all?: boolean }).all ?? false }));
}
