/**
 * The remote datastore protocol, reader half: what a node needs to list, restore and verify another
 * node's versions. GET /api/v1/stores/{store} (its kind: folder or s3), GET /api/v1/stores/{store}/guests (the ids of the guests with versions there, in
 * ascending order), GET /api/v1/stores/{store}/guests/{id}/versions (as GET /api/v1/backups, `store`
 * being the name), .../versions/{version}/files/{name} (the file's bytes as stored: manifest, config,
 * log, index) and GET /api/v1/stores/{store}/chunks/{digest} (the blob as stored). The reader checks
 * every digest itself (CRC and SHA-256 of each chunk, the manifest's checksum, each index's). A
 * store is a configured folder or S3 datastore (store-readers.ts: a version being pushed is not
 * there until published). Each route needs `versions.read` on that store: a `backup` token reads its
 * own store only.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { versionJson } from '../../catalog/index.js';
import type { RouteContext } from '../context.js';
import { readBuffer, releaseBody } from '../chunk-buffers.js';
import { responses, Version } from '../schemas.js';
import type { StoreReader, StoreReaders } from '../store-readers.js';
import { withStore } from '../stores.js';
import { configuredStore } from './store-ref.js';
import { ChunkReadParams, GuestVersionsParams, StoreInfo, StoreParams, VersionFileParams } from './store-schemas.js';

const tags = ['stores'];
const read = { access: { action: 'versions.read', store: (request: FastifyRequest) => (request.params as { store?: unknown }).store } } as const;
const bytes = { produces: ['application/octet-stream'], response: responses({ 200: Type.String() }) };

export function storeReadRoutes(app: FastifyInstance, ctx: RouteContext, readers: StoreReaders): void {
  app.get<{ Params: Static<typeof StoreParams> }>(
    '/api/v1/stores/:store',
    {
      config: read,
      schema: { summary: 'what kind of datastore a store is (folder or s3)', tags, params: StoreParams, response: responses({ 200: StoreInfo }) },
    },
    async (request) => ({ store: request.params.store, kind: configuredStore(ctx, request.params.store).kind ?? 'folder' }),
  );

  app.get<{ Params: Static<typeof StoreParams> }>(
    '/api/v1/stores/:store/guests',
    {
      config: read,
      schema: { summary: 'the guests with versions in a store', tags, params: StoreParams, response: responses({ 200: Type.Array(Type.String()) }) },
    },
    async (request) => {
      const ids = await withStore(configuredStore(ctx, request.params.store), ctx.config, ({ catalog }) => catalog.listVersions().map((v) => v.guestId));
      return [...new Set(ids)].sort((a, b) => Number(a) - Number(b));
    },
  );

  app.get<{ Params: Static<typeof GuestVersionsParams> }>(
    '/api/v1/stores/:store/guests/:id/versions',
    {
      config: read,
      schema: { summary: "a guest's versions in a store", tags, params: GuestVersionsParams, response: responses({ 200: Type.Array(Version) }) },
    },
    async (request) => {
      const { store, id } = request.params;
      return withStore(configuredStore(ctx, store), ctx.config, ({ catalog }) => catalog.listVersions(id).map((v) => ({ ...versionJson(v), store })));
    },
  );

  app.get<{ Params: Static<typeof VersionFileParams> }>(
    '/api/v1/stores/:store/guests/:id/versions/:version/files/:name',
    { config: read, schema: { summary: 'a file of a version, as stored', tags, params: VersionFileParams, ...bytes } },
    async (request, reply) => {
      const { store, id, version, name } = request.params;
      const reader = await readers.open(configuredStore(ctx, store));
      return sendBytes(reply, await reader.versionFile(id, version, name));
    },
  );

  app.get<{ Params: Static<typeof ChunkReadParams> }>(
    '/api/v1/stores/:store/chunks/:digest',
    { config: read, schema: { summary: 'a chunk blob as stored (the reader checks its CRC and SHA-256)', tags, params: ChunkReadParams, ...bytes } },
    async (request, reply) => {
      const reader = await readers.open(configuredStore(ctx, request.params.store));
      return sendChunk(reply, reader, request.params.digest);
    },
  );
}

/** A chunk's blob, read into a spare buffer (chunk-buffers.ts) that goes back once the answer is sent or broken off. */
async function sendChunk(reply: FastifyReply, reader: StoreReader, hex: string): Promise<FastifyReply> {
  const buf = readBuffer();
  try {
    const length = await reader.readChunkInto(hex, buf.buffer as ArrayBuffer, buf.byteOffset);
    reply.raw.once('close', () => releaseBody(buf));
    return sendBytes(reply, buf.subarray(0, length));
  } catch (err) {
    releaseBody(buf);
    throw err;
  }
}

function sendBytes(reply: FastifyReply, data: Buffer): FastifyReply {
  return reply.type('application/octet-stream').send(data);
}
