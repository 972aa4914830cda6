/**
 * A throwaway npm registry on 127.0.0.1 for the install test: it serves this checkout's production
 * dependencies (package-lock.json entries that are not dev-only), each packed from its folder under
 * node_modules as `npm ci` left it, so `npm install -g ./coldvault-X.tgz --registry <url>` resolves
 * and fetches every dependency over loopback. The registry's real answers cannot be used offline:
 * npm 11 resolves a tarball's dependencies from full packuments, which `npm ci`'s cache does not hold.
 * The packed folders carry the native binaries npm ci built (better-sqlite3, zstd-napi), so the
 * test installs with --ignore-scripts and builds only coldvault's own addon (on a node, npm runs
 * every install script: prebuilt downloads, else a compile).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

interface Manifest {
  name: string;
  version: string;
  [key: string]: unknown;
}

export interface LocalRegistry {
  url: string;
  /** name@version of every package served */
  served: string[];
  close(): Promise<void>;
}

export async function startLocalRegistry(repo: string, workDir: string): Promise<LocalRegistry> {
  const packuments = new Map<string, { name: string; 'dist-tags': { latest: string }; versions: Record<string, Manifest> }>();
  const files = new Map<string, string>();
  const server = createServer((req, res) => answer(req.url ?? '/', res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  function answer(path: string, res: ServerResponse): void {
    const name = decodeURIComponent(path.split('?')[0]?.slice(1) ?? '');
    const file = name.startsWith('-/tarballs/') ? files.get(name.slice('-/tarballs/'.length)) : undefined;
    if (file) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      createReadStream(file).pipe(res);
      return;
    }
    const packument = packuments.get(name);
    res.writeHead(packument ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(packument ?? { error: 'not found' }));
  }

  for (const dir of productionFolders(repo)) {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
    const fileName = `${manifest.name.replace('/', '__')}-${manifest.version}.tgz`;
    if (files.has(fileName)) continue;
    const tgz = join(workDir, fileName);
    await pack(dir, tgz);
    files.set(fileName, tgz);
    const bytes = readFileSync(tgz);
    const dist = {
      tarball: `${url}/-/tarballs/${fileName}`,
      integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
      shasum: createHash('sha1').update(bytes).digest('hex'),
    };
    const entry = packuments.get(manifest.name) ?? { name: manifest.name, 'dist-tags': { latest: manifest.version }, versions: {} };
    entry.versions[manifest.version] = { ...manifest, _id: `${manifest.name}@${manifest.version}`, dist };
    entry['dist-tags'].latest = newest(Object.keys(entry.versions));
    packuments.set(manifest.name, entry);
  }
  return {
    url,
    served: [...packuments.values()].flatMap((p) => Object.keys(p.versions).map((v) => `${p.name}@${v}`)),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The installed folders of the lockfile's non-dev packages (an optional one not installed here is left out). */
function productionFolders(repo: string): string[] {
  const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; link?: boolean }> };
  return Object.entries(lock.packages)
    .filter(([path, entry]) => path.startsWith('node_modules/') && !entry.dev && !entry.link)
    .map(([path]) => join(repo, path))
    .filter((dir) => existsSync(join(dir, 'package.json')));
}

/** The folder as an npm tarball (`package/...`), without its own node_modules and the compiler's object files. */
async function pack(dir: string, tgz: string): Promise<void> {
  await run('tar', ['-czf', tgz, '--exclude=./node_modules', '--exclude=obj.target', '--exclude=.deps', '--transform', 's,^\\.,package,', '-C', dir, '.']);
}

function newest(versions: string[]): string {
  const key = (v: string): number[] => v.split(/[.+-]/).map((p) => Number.parseInt(p, 10) || 0);
  return versions.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    return 0;
  })[versions.length - 1] as string;
}
