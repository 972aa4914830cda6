/**
 * Access rules per route, applied after the guard has found the principal. Every route that is not
 * public declares its action (`config: {access: {action}}`); a route without one cannot be
 * registered, so no route is left open by accident. Store-scoped actions name where the request's
 * store is (`access.store`); the store, as sent (a name or a folder), is turned into its configured
 * name before `decide` (roles.ts) sees it.
 *
 * The check runs at preValidation: a role that may not use a route gets 403 FORBIDDEN before its body
 * is validated. Decisions that depend on the body (a job's hook, a restore's `force`) are made by the
 * route with `authorize` / `may`. The refusal names the principal, its role, the action and the store.
 */
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { ApiError } from '../errors.js';
import { principalLabel } from './guard.js';
import { decide, RULES, type Action } from './roles.js';

export interface RouteAccess {
  action: Action;
  /** the store the request names (as sent), for a store-scoped action */
  store?: (request: FastifyRequest) => unknown;
}

/** What the route-level check allowed: `onlyStore` when the answer must be narrowed to one store. */
export interface Allowed {
  onlyStore?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    allowed?: Allowed;
  }
}

/** Installs the check; call before any route is added. `storeName` maps a store as sent to its configured name. */
export function installAccess(app: FastifyInstance, storeName: (ref: string) => string): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const config = route.config;
    if (config?.public || config?.access) return;
    throw new Error(`route ${String(route.method)} ${route.url} has no access rule: set config.access (auth/access.ts) or config.public`);
  });
  app.addHook('preValidation', async (request) => {
    const access = request.routeOptions.config?.access;
    if (!access) return;
    const ref = access.store?.(request);
    request.allowed = authorize(request, access.action, typeof ref === 'string' && ref !== '' ? storeName(ref) : undefined);
  });
}

/** Throws 403 FORBIDDEN unless the request's principal may do `action` (on `store`, a configured name); `detail` ends the message. */
export function authorize(request: FastifyRequest, action: Action, store?: string, detail = ''): Allowed {
  const principal = request.principal;
  if (!principal) throw new ApiError('UNAUTHORIZED', `${RULES[action].does}: log in or send an API token`);
  const decision = decide(principal.grant, action, store);
  if (!decision.allowed) throw new ApiError('FORBIDDEN', `${principalLabel(principal)}: ${decision.message}${detail}`);
  return decision.onlyStore === undefined ? {} : { onlyStore: decision.onlyStore };
}

export function may(request: FastifyRequest, action: Action, store?: string): boolean {
  return request.principal !== undefined && decide(request.principal.grant, action, store).allowed;
}

/** Who a task started by this request was started by (the task list's "started by"). */
export function startedBy(request: FastifyRequest): string {
  if (!request.principal) throw new ApiError('UNAUTHORIZED', 'starting a task needs a login or an API token');
  return principalLabel(request.principal);
}

/** The principal as the API describes it (GET /api/v1/whoami). */
export function describePrincipal(request: FastifyRequest): { name: string; role: string; store: string | null } {
  const principal = request.principal;
  if (!principal) throw new ApiError('UNAUTHORIZED', 'log in or send an API token');
  return { name: principalLabel(principal), role: principal.grant.role, store: principal.grant.store ?? null };
}

/** A body or query field, when the request has it as a string. */
export function field(where: 'body' | 'query', name: string): (request: FastifyRequest) => unknown {
  return (request) => {
    const holder = request[where];
    return typeof holder === 'object' && holder !== null ? (holder as Record<string, unknown>)[name] : undefined;
  };
}
