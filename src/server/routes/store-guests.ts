/**
 * The remote datastore protocol, reader half: GET /api/v1/stores/{store}/guests lists the guests that
 * have versions in a store, `[{id, versions, last}]` (id ascending; `last`: the newest version's
 * number), from the store's catalog as the version list is. A sync (`coldvault sync` without --vmid,
 * a sync job with `all`) asks it for the guests to pull. Needs `versions.read` on that store.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RouteContext } from '../context.js';
import { responses, Vmid } from '../schemas.js';
import { withCatalog } from '../stores.js';
import { StoreParams } from './store-schemas.js';
import { configuredStore } from './store-uploads.js';

const read = { access: { action: 'versions.read', store: (request: FastifyRequest) => (request.params as { store?: unknown }).store } } as const;
const GuestEntry = Type.Object({ id: Vmid, versions: Type.Integer({ minimum: 1 }), last: Type.Integer({ minimum: 1 }) });

export function storeGuestRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get<{ Params: Static<typeof StoreParams> }>(
    '/api/v1/stores/:store/guests',
    {
      config: read,
      schema: { summary: 'the guests with versions in a store', tags: ['stores'], params: StoreParams, response: responses({ 200: Type.Array(GuestEntry) }) },
    },
    async (request) => withCatalog(configuredStore(ctx, request.params.store), (_s, catalog) => guestEntries(catalog.listVersions())),
  );
}

function guestEntries(versions: ReadonlyArray<{ guestId: string; version: number }>): Array<Static<typeof GuestEntry>> {
  const byGuest = new Map<string, { id: string; versions: number; last: number }>();
  for (const v of versions) {
    const entry = byGuest.get(v.guestId) ?? { id: v.guestId, versions: 0, last: 0 };
    entry.versions++;
    entry.last = Math.max(entry.last, v.version);
    byGuest.set(v.guestId, entry);
  }
  return [...byGuest.values()].sort((a, b) => Number(a.id) - Number(b.id));
}
