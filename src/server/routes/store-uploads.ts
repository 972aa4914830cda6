/**
 * The remote datastore protocol, writer half (cluster mode's push; the protocol and its safety
 * argument are in uploads/index.ts). All under /api/v1/stores/{store}/uploads, `store` a configured
 * datastore's name, a folder or an S3 datastore; every route needs `store.write` on that store (a
 * `backup` token of that store, or an admin). Chunk and file bodies are application/octet-stream,
 * accepted only here.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MiB } from '../../core/index.js';
import { CHUNK_SIZE, maxBlobSize } from '../../format/index.js';
import { startedBy } from '../auth/index.js';
import type { RouteContext } from '../context.js';
import { ApiError } from '../errors.js';
import { readOctetBody } from '../octet-body.js';
import { responses } from '../schemas.js';
import { fileKind, fileLimit, MAX_INDEX_BYTES, type Asker, type UploadRegistry } from '../uploads/index.js';
import { configuredStore } from './store-ref.js';
import { ChunkParams, FileParams, Finished, FinishBody, KnownAnswer, KnownBody, Opened, OpenBody, StoreParams, UploadParams } from './store-schemas.js';

const tags = ['stores'];
const write = { access: { action: 'store.write', store: (request: FastifyRequest) => (request.params as { store?: unknown }).store } } as const;

export function storeUploadRoutes(app: FastifyInstance, ctx: RouteContext, uploads: UploadRegistry): void {
  void app.register((scope, _opts, done) => {
    scope.addContentTypeParser('application/octet-stream', readOctetBody);
    openRoute(scope, ctx, uploads);
    knownRoute(scope, uploads);
    chunkRoute(scope, uploads);
    fileRoute(scope, uploads);
    finishRoute(scope, uploads);
    abortRoute(scope, uploads);
    done();
  });
}

function openRoute(app: FastifyInstance, ctx: RouteContext, uploads: UploadRegistry): void {
  app.post<{ Params: Static<typeof StoreParams>; Body: Static<typeof OpenBody> }>(
    '/api/v1/stores/:store/uploads',
    {
      config: write,
      schema: { summary: 'opens an upload of one new version of a guest', tags, params: StoreParams, body: OpenBody, response: responses({ 201: Opened }) },
    },
    async (request, reply) => {
      const { store } = request.params;
      const upload = await uploads.start({ ...request.body, ref: configuredStore(ctx, store), principal: startedBy(request) });
      upload.stats.requestBytes += jsonBytes(request);
      return reply.code(201).send({ upload: upload.info.id, version: upload.info.version, idleTimeoutSeconds: uploads.idleMs / 1000 });
    },
  );
}

function knownRoute(app: FastifyInstance, uploads: UploadRegistry): void {
  app.post<{ Params: Static<typeof UploadParams>; Body: Static<typeof KnownBody> }>(
    '/api/v1/stores/:store/uploads/:upload/known',
    {
      config: write,
      schema: {
        summary: 'which of these chunks the store lacks; those it has are touched (kept by gc for this upload)',
        tags,
        params: UploadParams,
        body: KnownBody,
        response: responses({ 200: KnownAnswer }),
      },
    },
    async (request) => ({ missing: await uploadOf(request, uploads).known(request.body.digests, jsonBytes(request)) }),
  );
}

function chunkRoute(app: FastifyInstance, uploads: UploadRegistry): void {
  app.put<{ Params: Static<typeof ChunkParams> }>(
    '/api/v1/stores/:store/uploads/:upload/chunks/:digest',
    {
      config: write,
      bodyLimit: maxBlobSize(CHUNK_SIZE),
      schema: {
        summary: 'one chunk blob as the datastore stores it (magic, CRC-32, raw or zstd payload); refused unless it hashes to its name',
        tags,
        params: ChunkParams,
        consumes: ['application/octet-stream'],
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await uploadOf(request, uploads).putChunk(request.params.digest, octets(request));
      return reply.code(204).send();
    },
  );
}

function fileRoute(app: FastifyInstance, uploads: UploadRegistry): void {
  app.put<{ Params: Static<typeof FileParams> }>(
    '/api/v1/stores/:store/uploads/:upload/files/:name',
    {
      config: write,
      bodyLimit: MAX_INDEX_BYTES,
      schema: {
        summary: "a file of the version: the guest config, the log, or a disk's index (every chunk it names must be in the store)",
        tags,
        params: FileParams,
        consumes: ['application/octet-stream'],
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const data = octets(request);
      const limit = fileLimit(fileKind(name));
      if (data.length > limit) throw new ApiError('PAYLOAD_TOO_LARGE', `${name}: ${data.length} bytes, more than the ${limit} such a file may have`);
      await uploadOf(request, uploads).putFile(name, data);
      return reply.code(204).send();
    },
  );
}

function finishRoute(app: FastifyInstance, uploads: UploadRegistry): void {
  app.post<{ Params: Static<typeof UploadParams>; Body: Static<typeof FinishBody> }>(
    '/api/v1/stores/:store/uploads/:upload/finish',
    {
      config: write,
      bodyLimit: 4 * MiB, // the manifest carries the guest config (up to 1 MiB as a file)
      schema: {
        summary: 'checks the manifest against the upload and its indexes, and publishes the version (atomic); a refusal leaves the upload open',
        tags,
        params: UploadParams,
        body: FinishBody,
        response: responses({ 200: Finished }),
      },
    },
    async (request) => uploadOf(request, uploads).finish(request.body.manifest, jsonBytes(request)),
  );
}

function abortRoute(app: FastifyInstance, uploads: UploadRegistry): void {
  app.delete<{ Params: Static<typeof UploadParams> }>(
    '/api/v1/stores/:store/uploads/:upload',
    {
      config: write,
      schema: {
        summary: 'aborts an upload: nothing is published; what it sent is left to gc',
        tags,
        params: UploadParams,
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await uploadOf(request, uploads).cancel(startedBy(request));
      return reply.code(204).send();
    },
  );
}

function uploadOf(request: FastifyRequest, uploads: UploadRegistry): ReturnType<UploadRegistry['get']> {
  const params = request.params as { store: string; upload: string };
  const asker: Asker = { store: params.store, principal: startedBy(request) };
  return uploads.get(params.upload, asker);
}

function octets(request: FastifyRequest): Buffer {
  if (Buffer.isBuffer(request.body)) return request.body;
  throw new ApiError('UNSUPPORTED_MEDIA_TYPE', `${request.method} ${request.url.split('?')[0]}: send the bytes as application/octet-stream`);
}

function jsonBytes(request: FastifyRequest): number {
  return Number(request.headers['content-length'] ?? 0) || 0;
}
