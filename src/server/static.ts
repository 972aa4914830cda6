/**
 * The web UI's files, served at / from `ui/` beside this module (src/server/ui, copied to
 * dist/server/ui by the build). Public: the pages hold no data, the API behind them needs the login.
 * A path that would leave the folder (`..`, a symlink pointing out) is a 404; /api and /metrics paths
 * are never files. Pages get a strict Content-Security-Policy: scripts and styles from files of this
 * origin only, no inline script, no framing.
 */
import { createReadStream, existsSync, realpathSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.js';

// '../server/ui/': the same folder from dist/server/ and from the bundle in dist/bundle/ (scripts/bundle.mjs)
export const DEFAULT_UI_DIR = fileURLToPath(new URL('../server/ui/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};
const CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export function staticRoutes(app: FastifyInstance, uiDir: string | null): void {
  if (!uiDir || !existsSync(uiDir)) return;
  const root = realpathSync(uiDir);
  app.get<{ Params: { '*': string } }>(
    '/*',
    {
      config: { public: true },
      schema: { hide: true, params: Type.Object({ '*': Type.String() }) },
    },
    async (request, reply) => {
      const rel = request.params['*'];
      const file = /^(api|metrics)(\/|$)/.test(rel) ? undefined : await fileInside(root, rel || 'index.html');
      if (!file) throw new ApiError('NOT_FOUND', `GET /${rel}: no such file or route`);
      return reply
        .header('content-security-policy', CSP)
        .header('cache-control', 'no-cache')
        .type(TYPES[extname(file)] ?? 'application/octet-stream')
        .send(createReadStream(file));
    },
  );
}

async function fileInside(root: string, rel: string): Promise<string | undefined> {
  const inside = (p: string): boolean => p === root || p.startsWith(root + sep);
  let path = resolve(root, rel);
  if (!inside(path)) return undefined;
  try {
    path = await realpath(path);
    if ((await stat(path)).isDirectory()) path = await realpath(join(path, 'index.html'));
    return inside(path) && (await stat(path)).isFile() ? path : undefined;
  } catch {
    return undefined;
  }
}
