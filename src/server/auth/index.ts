/**
 * auth: who sent a request and what it may do. The guard (onRequest) finds the principal: an API
 * token (tokens.ts) or a web session (sessions.ts, cookies.ts) after a login with the admin password
 * (admin.ts, rate-limit.ts); the access check (preValidation, access.ts) asks the one decision
 * (roles.ts: role + scope + action + store) whether the route is allowed. Secrets are stored as
 * hashes in the state database's server tables (secrets.ts, tables.ts).
 */
export * from './access.js';
export * from './admin.js';
export * from './cookies.js';
export * from './guard.js';
export * from './rate-limit.js';
export * from './roles.js';
export * from './secrets.js';
export * from './sessions.js';
export * from './tables.js';
export * from './tokens.js';
