/**
 * The attached, unmounted external disks (with `all` also loop devices and fixed disks): the
 * "external device" choice of the job form and the Restore tab.
 *
 * GET /api/v1/devices lists them as lsblk and blkid see them and mounts nothing: a GET is read-only
 * for every role, and mounting a disk someone plugged in has the kernel parse a filesystem nobody
 * vetted. Whose datastore each disk holds is an explicit request, POST /api/v1/devices/probe: each
 * disk is mounted read-only (no journal replay, read-only block device, nosuid,nodev,noexec) in a
 * private temp dir for a moment, one at a time; `devices` limits it to the disks named. (Reading the identity file without mounting works for
 * ext4 with debugfs and NTFS with ntfscat, but not for exFAT, and xfs_db cannot print a file: not
 * robust for every filesystem coldvault supports.)
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { listCandidates, listDevices } from '../../targets/index.js';
import { checkDevice } from '../paths.js';
import type { RouteContext } from '../context.js';
import { responses } from '../schemas.js';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

const deviceFields = {
  path: Type.String(),
  size: Type.Integer(),
  fstype: Nullable(Type.String()),
  label: Nullable(Type.String()),
  uuid: Nullable(Type.String()),
  model: Nullable(Type.String()),
  serial: Nullable(Type.String()),
  type: Type.String(),
  transport: Nullable(Type.String()),
};
const Device = Type.Object(deviceFields);
const ProbedDevice = Type.Object({
  ...deviceFields,
  datastore: Type.Union([Type.Object({ id: Type.String() }), Type.Null()]),
  probeError: Type.Optional(Type.String()),
});
const All = Type.Optional(Type.Boolean({ default: false, description: 'also loop devices and fixed disks' }));

export function deviceRoutes(app: FastifyInstance, _ctx: RouteContext): void {
  app.get(
    '/api/v1/devices',
    {
      config: { access: { action: 'read' } },
      schema: {
        summary: 'unmounted external disks (nothing is mounted: see POST /api/v1/devices/probe for the datastore on each)',
        tags: ['devices'],
        querystring: Type.Object({ all: All }, { additionalProperties: false }),
        response: responses({ 200: Type.Array(Device) }),
      },
    },
    async (request) => listCandidates({ all: (request.query as { all?: boolean }).all ?? false }),
  );

  app.post(
    '/api/v1/devices/probe',
    {
      config: { access: { action: 'devices.probe' } },
      schema: {
        summary: 'unmounted external disks with the coldvault datastore each holds (each mounted read-only for a moment)',
        tags: ['devices'],
        body: Type.Object(
          {
            all: All,
            devices: Type.Optional(
              Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 64, description: 'only these disks (/dev/..., UUID=..., LABEL=...)' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Array(ProbedDevice) }),
      },
    },
    async (request) => {
      const { all = false, devices } = request.body as { all?: boolean; devices?: string[] };
      for (const spec of devices ?? []) checkDevice(spec);
      return listDevices({ all, only: devices });
    },
  );
}
