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
 * robust for every filesystem coldvault supports.) What a probe finds is recorded as a sighting.
 *
 * GET /api/v1/devices/datastores is the Restore tab's picker: the attached disks that hold a coldvault
 * datastore, told without mounting anything (jobs/disk-discovery.ts: what coldvault saw when it last
 * had each disk mounted, the jobs that name a disk and the datastore they are bound to, config
 * storeDevices), each with the folder to mount it on for a restore (a known store, else null) and its
 * guests as last seen; `others` are the remaining external disks, to type by hand.
 */
import { resolve } from 'node:path';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { DeviceSightings, discoverDatastoreDisks, type DatastoreDisk } from '../../jobs/index.js';
import { listCandidates, listDevices, type DiscoveredDevice } from '../../targets/index.js';
import { checkDevice, knownStores } from '../paths.js';
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
const DatastoreDiskSchema = Type.Object({
  ...deviceFields,
  spec: Type.String({ description: 'what a restore sends as fromDevice: UUID=... when the filesystem has one, else its path' }),
  datastoreIds: Type.Array(Type.String(), {
    description: "the datastore on it: one when known; a rotated job's bound datastores (one of them) when coldvault has not had this disk mounted yet",
  }),
  store: Nullable(
    Type.String({ description: 'the folder (a known store) to mount it on for a restore: where coldvault last had it mounted, else its job’s store' }),
  ),
  storeName: Nullable(Type.String({ description: 'that store’s name (a configured datastore, or job:<id>)' })),
  jobs: Type.Array(Type.String(), { description: 'the jobs whose device names it' }),
  guests: Type.Union([Type.Array(Type.Object({ id: Type.String(), versions: Type.Array(Type.Integer()) })), Type.Null()], {
    description: 'its guests and their version numbers when coldvault last had it mounted; null when not known',
  }),
  seen: Type.Union([Type.Object({ time: Type.String(), by: Type.String() }), Type.Null()], {
    description: 'when and by what (a job, a restore, a probe) coldvault last had it mounted; null: never (known from a job’s binding)',
  }),
});
const All = Type.Optional(Type.Boolean({ default: false, description: 'also loop devices and fixed disks' }));

export function deviceRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const sightings = new DeviceSightings(ctx.state.db);
  app.get(
    '/api/v1/devices/datastores',
    {
      config: { access: { action: 'read' } },
      schema: {
        summary: 'attached disks that hold a coldvault datastore, as far as coldvault knows without mounting any (the Restore tab)',
        tags: ['devices'],
        response: responses({ 200: Type.Object({ disks: Type.Array(DatastoreDiskSchema), others: Type.Array(Device) }) }),
      },
    },
    async () => {
      const found = await discoverDatastoreDisks({
        jobs: ctx.state.jobs.list(),
        sightings: sightings.list(),
        storeDevices: ctx.config.storeDevices,
        datastores: ctx.config.datastores,
      });
      return { disks: found.disks.map((d) => withKnownStore(d, ctx)), others: found.others };
    },
  );

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
      const found = await listDevices({ all, only: devices });
      recordProbed(sightings, found);
      return found;
    },
  );
}

/** The disk's store only when the server knows it (a configured datastore or a job's folder: a restore may name it), with its name. */
function withKnownStore(disk: DatastoreDisk, ctx: RouteContext): DatastoreDisk & { storeName: string | null } {
  const store = disk.store ? knownStores(ctx.config, ctx.state.jobs).find((s) => s.kind !== 's3' && s.dir === resolve(disk.store as string)) : undefined;
  return { ...disk, store: store?.dir ?? null, storeName: store?.name ?? null };
}

/** A probe's findings as sightings: the datastore id only (a probe reads nothing else). */
function recordProbed(sightings: DeviceSightings, found: DiscoveredDevice[]): void {
  for (const d of found) if (d.datastore) sightings.record(d, { datastoreId: d.datastore.id, dir: null, guests: null, by: 'probe' });
}
