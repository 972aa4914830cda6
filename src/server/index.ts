/**
 * server: coldvault's HTTP API v1 and the web UI's files, on Fastify. Used by `coldvault serve`.
 *
 * Vocabulary: a *route* has a JSON schema for params, query, body and responses (schemas.ts), from
 * which the OpenAPI document is generated (openapi.ts); a *principal* is who sent a request: an API
 * token (`Authorization: Bearer cv_...`, made by `coldvault token create`) or a web session (cookie
 * from POST /api/v1/login with the admin password); a *task* is a background run (job, restore,
 * verify, prune) with a log in the state database, started by the TaskRunner (runner.ts), which the
 * scheduler shares, so "start now" and a scheduled run take the same path.
 *
 * Roles: every token has one (auth/roles.ts: admin, operator, audit, backup scoped to one datastore);
 * the web login is admin. Each route declares its action; `decide` (role + scope + action + store) is
 * the one place that allows or refuses (403 FORBIDDEN naming principal, role, action and store).
 *
 * Request flow: onRequest guard (auth/guard.ts: 401 without a live token or session; 403 for a
 * state-changing cookie request without `X-Requested-With: coldvault`) -> preValidation access check
 * (auth/access.ts: 403 FORBIDDEN for a role that may not use the route) -> schema validation (unknown
 * body fields are a 400) -> the route (body-dependent role checks: a job's hook, a restore's force), which checks every path in the request against the configured
 * datastores, storages, job stores and script folders (paths.ts: PATH_NOT_ALLOWED) -> engine calls.
 * Every thrown error becomes `{error: {code, message}}` with a status in one place (errors.ts).
 *
 * Storage: the server's tables (settings with the admin password's scrypt hash, API tokens and
 * sessions as SHA-256) live in the state database beside jobs and tasks (auth/tables.ts).
 * Plain HTTP only on loopback: beyond it serve speaks HTTPS, with the configured certificate or the
 * self-signed one it makes (tls/), unless `allowInsecureListen` (listen.ts).
 *
 * At serve's start, live restores whose process died are finished as tasks (live-resume.ts).
 *
 * Layer: imports core, guests, datastore, catalog, pipeline and jobs; cli wires it.
 */
export { createServer } from './app.js';
export type { Clock, ServerConfig, ServerDeps, ServerState } from './deps.js';
export { TaskRunner, type RunningTask, type Started } from './runner.js';
export { resumeLiveRestores, type LiveResumeEnv } from './live-resume.js';
export { ensureAdminPassword } from './auth/index.js';
export { TokenStore, type TokenInfo } from './auth/index.js';
export { decide, ROLES, type Action, type Grant, type Role } from './auth/index.js';
export { checkListen, DEFAULT_LISTEN, isLoopback, parseListen, serverTls, startServer, tlsChoice, type TlsChoice } from './listen.js';
export * from './tls/index.js';
export { VERSION } from './version.js';
export { tuneHeapForServing } from './heap-tuning.js';
