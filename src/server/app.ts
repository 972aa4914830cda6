/** createServer: the Fastify app with auth, error mapping, every route, the OpenAPI document and the web UI. */
import Fastify, { type FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { ensureServerTables, installAccess, installGuard, LoginLimiter, SessionStore, TokenStore } from './auth/index.js';
import type { RouteContext } from './context.js';
import type { ServerDeps } from './deps.js';
import { installErrorHandling } from './errors.js';
import { readTls } from './listen.js';
import { collectRoutes, openApiDocument } from './openapi.js';
import { storeName } from './paths.js';
import { loginLimits, sessionLifetime, trustProxy, uploadIdleMs } from './settings.js';
import { TaskRunner } from './runner.js';
import { responses } from './schemas.js';
import { SseStreams } from './sse.js';
import { DEFAULT_UI_DIR, staticRoutes } from './static.js';
import {
  backupRoutes,
  deviceRoutes,
  guestRoutes,
  jobRoutes,
  metricsRoutes,
  overviewRoutes,
  sessionRoutes,
  statusRoutes,
  storeDeviceRoutes,
  storeReadRoutes,
  storeLeaseRoutes,
  storeUploadRoutes,
  taskRoutes,
} from './routes/index.js';
import { StoreDevices, storeDeviceList } from './store-devices.js';
import { receivingStores, UploadRegistry } from './uploads/index.js';
import { ReadLeases } from './read-leases.js';
import { StoreReaders } from './store-readers.js';
import { Datastore } from '../datastore/index.js';
import { DeviceSightings } from '../jobs/index.js';

export async function createServer(deps: ServerDeps): Promise<FastifyInstance> {
  const clock = deps.clock ?? Date.now;
  ensureServerTables(deps.state.db);
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: 1024 * 1024,
    // at close, drop every connection: a browser's spare (pre-opened) socket would hold it for the keep-alive timeout
    forceCloseConnections: true,
    ajv: { customOptions: { removeAdditional: false } },
    trustProxy: trustProxy(deps.config),
    ...(deps.config.tls ? { https: readTls(deps.config.tls) } : {}),
  }) as unknown as FastifyInstance;
  app.removeContentTypeParser('text/plain'); // JSON only: no body a cross-site form could send
  const runner = deps.runner ?? new TaskRunner(deps);
  const ctx: RouteContext = {
    config: deps.config,
    state: deps.state,
    driver: deps.driver,
    clock,
    runner,
    startedAt: clock(),
    secure: Boolean(deps.config.tls),
    tokens: new TokenStore(deps.state.db, clock),
    limiter: new LoginLimiter(clock, loginLimits(deps.config)),
    sessions: new SessionStore(deps.state.db, clock, sessionLifetime(deps.config)),
  };
  const routes = collectRoutes(app);
  installErrorHandling(app);
  installGuard(app, ctx.tokens, ctx.sessions);
  installAccess(app, (ref) => storeName(ref, ctx.config, ctx.state.jobs));
  app.addHook('onSend', async (_request, reply) => {
    void reply.header('x-content-type-options', 'nosniff').header('x-frame-options', 'DENY').header('referrer-policy', 'no-referrer');
    if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store');
    if (ctx.secure) void reply.header('strict-transport-security', 'max-age=15552000');
  });
  const streams = new SseStreams();
  app.addHook('preClose', async () => streams.closeAll());
  if (!deps.runner) app.addHook('onClose', async () => runner.close());
  const s3Settings = (name: string) => deps.config.s3Stores?.(name);
  const uploads = new UploadRegistry({
    node: deps.config.node,
    tasks: deps.state.tasks,
    idleMs: uploadIdleMs(deps.config),
    receive: receivingStores({
      openFolder: async (dir) => {
        devices.checkAttached(dir); // a store that is an external disk's takes uploads only while one is attached
        return Datastore.open(dir, deps.storeSeams);
      },
      s3Settings,
      stateDir: deps.config.stateDir,
    }),
  });
  const devices = storeDevices(deps, (store) => uploads.openIn(store));
  const readers = new StoreReaders({ openFolder: (dir) => Datastore.open(dir, deps.storeSeams), s3Settings });
  const leases = new ReadLeases({ idleMs: uploadIdleMs(deps.config), openStore: (ref) => readers.open(ref) });
  // shutdown aborts open uploads (nothing half-pushed stays staged), ends read leases, then unmounts the disks attached for senders
  app.addHook('onClose', async () => {
    await uploads.abortAll();
    await leases.releaseAll();
    await readers.close();
    await devices.detachAll();
  });
  registerRoutes(app, ctx, streams);
  storeUploadRoutes(app, ctx, uploads);
  storeReadRoutes(app, ctx, readers);
  storeLeaseRoutes(app, ctx, leases);
  storeDeviceRoutes(app, ctx, devices);
  let openapi: Record<string, unknown> | undefined;
  app.get(
    '/api/v1/openapi.json',
    {
      config: { access: { action: 'session' } },
      schema: { summary: 'this document (OpenAPI 3.1)', tags: ['meta'], response: responses({ 200: Type.Any() }) },
    },
    async () => (openapi ??= openApiDocument(routes)),
  );
  staticRoutes(app, deps.uiDir === undefined ? DEFAULT_UI_DIR : deps.uiDir);
  return app;
}

/** External disks a sending node may have mounted on a store's folder (config storeDevices; CONFIG_INVALID at once when wrong). */
function storeDevices(deps: ServerDeps, openUploads: (store: string) => number): StoreDevices {
  const { config } = deps;
  const allowed = storeDeviceList(config.storeDevices, config.datastores, Object.keys(config.s3StoreUrls ?? {}));
  const sightings = new DeviceSightings(deps.state.db);
  return new StoreDevices({
    node: config.node,
    tasks: deps.state.tasks,
    idleMs: uploadIdleMs(config),
    datastores: config.datastores,
    allowed,
    openUploads,
    sightings,
  });
}

function registerRoutes(app: FastifyInstance, ctx: RouteContext, streams: SseStreams): void {
  sessionRoutes(app, ctx);
  statusRoutes(app, ctx);
  guestRoutes(app, ctx);
  jobRoutes(app, ctx);
  taskRoutes(app, ctx, streams);
  backupRoutes(app, ctx);
  metricsRoutes(app, ctx);
  deviceRoutes(app, ctx);
  overviewRoutes(app, ctx);
}
