/**
 * GET /api/v1/guests: the guest configs of the guests dir with the hypervisor's status (an error
 * there is `unknown`), name and the size of the disks a backup would read (null if one is missing).
 */
import { stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { guestName, listGuestIds, readGuestConfig, resolveVolumePath, selectBackupDisks } from '../../guests/index.js';
import type { RouteContext } from '../context.js';
import { Guest, responses } from '../schemas.js';

export function guestRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get(
    '/api/v1/guests',
    {
      config: { access: { action: 'read' } },
      schema: { summary: 'guests of the guests dir: id, status, name, type, disk size', tags: ['guests'], response: responses({ 200: Type.Array(Guest) }) },
    },
    async () => {
      const ids = existsSync(ctx.config.guestsDir) ? await listGuestIds(ctx.config.guestsDir) : [];
      return Promise.all(ids.map((id) => describeGuest(ctx, id)));
    },
  );
}

async function describeGuest(ctx: RouteContext, id: string): Promise<Record<string, unknown>> {
  const status = await ctx.driver.status(id).catch(() => 'unknown' as const);
  try {
    const { config } = await readGuestConfig(ctx.config.guestsDir, id);
    return {
      id,
      status,
      name: guestName(config),
      type: 'qemu',
      diskSize: await diskSize(
        ctx,
        selectBackupDisks(config).included.map((d) => d.volume),
      ),
    };
  } catch {
    return { id, status, name: '', type: 'qemu', diskSize: null };
  }
}

async function diskSize(ctx: RouteContext, volumes: string[]): Promise<number | null> {
  try {
    const sizes = await Promise.all(volumes.map(async (v) => (await stat(resolveVolumePath(v, ctx.config.storages))).size));
    return sizes.reduce((a, b) => a + b, 0);
  } catch {
    return null;
  }
}
