/**
 * A lab for the API tests: a temp folder with a guests dir (guest 101, a 16 MiB generated disk), a
 * `local` storage, a datastore `main`, a scripts folder and a state dir with a real SQLite state
 * database; the server made by createServer from the BUILT code (dist/: the chunk workers are .js
 * files), driver `none`, a clock the test can move, an admin API token, and the admin password `secret`.
 * Requests go through fastify.inject, or real HTTP when the test listens.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { imagePath, makeLab, REPO, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';
import { Datastore } from '../../dist/datastore/index.js';
import { createDriver } from '../../dist/guests/hypervisor/index.js';
import { JobStore, openStateDb, StopJournal, TaskStore } from '../../dist/jobs/index.js';
import { createServer, ensureAdminPassword, TokenStore, type ServerConfig, type ServerState } from '../../dist/server/index.js';

if (!existsSync(join(REPO, 'dist/server/index.js'))) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first');

export const PASSWORD = 'secret';
export const UI_DIR = join(REPO, 'src/server/ui');

export interface ServerLab extends Lab {
  stateDir: string;
  scriptsDir: string;
  config: ServerConfig;
  state: ServerState;
  app: FastifyInstance;
  token: string;
  tokens: TokenStore;
  clock: () => number;
  advance(ms: number): void;
  /** inject with the API token (or `auth: false` / other headers) */
  api(method: InjectOptions['method'], url: string, body?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** `prepare` runs on the new lab before its datastore is made (e.g. to mount a filesystem on lab.storeDir). */
export async function makeServerLab(opts: { config?: Partial<ServerConfig>; prepare?: (lab: Lab) => void } = {}): Promise<ServerLab> {
  const lab = makeLab('cv-server-');
  opts.prepare?.(lab);
  const stateDir = join(lab.root, 'state');
  const scriptsDir = join(lab.root, 'scripts');
  mkdirSync(scriptsDir);
  writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
  writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), ['random', 'zero', 'text', 'random'], 7);
  await Datastore.init(lab.storeDir);
  const config: ServerConfig = {
    node: 'testnode',
    stateDir,
    guestsDir: lab.guestsDir,
    storages: { local: lab.storageDir },
    datastores: { main: lab.storeDir },
    zstdLevel: 1,
    scriptDirs: [scriptsDir],
    ...opts.config,
  };
  const db = openStateDb(stateDir);
  const state: ServerState = { db, jobs: new JobStore(db), tasks: new TaskStore(db, stateDir), journal: new StopJournal(db) };
  let offset = 0;
  const clock = (): number => Date.now() + offset;
  await ensureAdminPassword(db, PASSWORD);
  const tokens = new TokenStore(db, clock);
  const { token } = tokens.create('tests', { role: 'admin' });
  const app = await createServer({ config, state, driver: createDriver({ driver: 'none' }), clock, uiDir: UI_DIR });
  return {
    ...lab,
    stateDir,
    scriptsDir,
    config,
    state,
    app,
    token,
    tokens,
    clock,
    advance: (ms) => {
      offset += ms;
    },
    api: (method, url, body, headers = { authorization: `Bearer ${token}` }) =>
      app.inject({ method, url, headers, ...(body === undefined ? {} : { payload: body as InjectOptions['payload'] }) }),
    close: async () => {
      await app.close();
      db.close();
      lab.cleanup();
    },
  };
}

/** Polls a task until it is no longer running; returns its JSON. */
export async function waitTask(lab: ServerLab, taskId: string, timeoutMs = 30_000): Promise<{ status: string; [k: string]: unknown }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await lab.api('GET', `/api/v1/tasks/${taskId}`);
    const task = res.json() as { status: string };
    if (task.status !== 'running') return task;
    if (Date.now() > until) throw new Error(`task ${taskId} still running after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function errorCode(res: LightMyRequestResponse): string | undefined {
  return (res.json() as { error?: { code?: string } }).error?.code;
}

/** Every API route as the OpenAPI document lists them: `METHOD /path`. */
export const ALL_ROUTES = [
  'GET /api/v1/health',
  'POST /api/v1/login',
  'POST /api/v1/logout',
  'GET /api/v1/status',
  'GET /api/v1/guests',
  'GET /api/v1/overview',
  'GET /api/v1/jobs',
  'POST /api/v1/jobs',
  'GET /api/v1/jobs/{id}',
  'PUT /api/v1/jobs/{id}',
  'DELETE /api/v1/jobs/{id}',
  'POST /api/v1/jobs/{id}/run',
  'GET /api/v1/tasks',
  'GET /api/v1/tasks/{id}',
  'GET /api/v1/tasks/{id}/log',
  'GET /api/v1/backups',
  'GET /api/v1/backups/{vmid}/{version}/screenshot',
  'POST /api/v1/verify',
  'POST /api/v1/prune',
  'POST /api/v1/restore',
  'GET /api/v1/restore/nodes',
  'GET /metrics',
  'GET /api/v1/openapi.json',
  'GET /api/v1/devices',
  'GET /api/v1/devices/datastores',
  'POST /api/v1/devices/probe',
  'GET /api/v1/whoami',
  'POST /api/v1/stores/{store}/uploads',
  'POST /api/v1/stores/{store}/uploads/{upload}/known',
  'PUT /api/v1/stores/{store}/uploads/{upload}/chunks/{digest}',
  'PUT /api/v1/stores/{store}/uploads/{upload}/files/{name}',
  'POST /api/v1/stores/{store}/uploads/{upload}/finish',
  'DELETE /api/v1/stores/{store}/uploads/{upload}',
  'GET /api/v1/stores/{store}',
  'GET /api/v1/stores/{store}/guests',
  'GET /api/v1/stores/{store}/guests/{id}/versions',
  'GET /api/v1/stores/{store}/guests/{id}/versions/{version}/files/{name}',
  'GET /api/v1/stores/{store}/chunks/{digest}',
  'POST /api/v1/stores/{store}/guests/{id}/versions/{version}/lease',
  'POST /api/v1/stores/{store}/leases/{lease}/keepalive',
  'DELETE /api/v1/stores/{store}/leases/{lease}',
  'POST /api/v1/stores/{store}/device',
  'POST /api/v1/stores/{store}/device/{attachment}/keepalive',
  'DELETE /api/v1/stores/{store}/device/{attachment}',
];
