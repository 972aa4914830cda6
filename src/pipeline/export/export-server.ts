/**
 * Serving a version's disks over NBD (read-only): on a unix socket (made private to its owner) or a
 * TCP port on a loopback address (NBD has no authentication: anyone who reaches the port reads the
 * disks, so nothing else is allowed). The version is opened as a restore opens it (its manifest
 * checked, with the key when encrypted; each index checked against the manifest) and leased for the
 * export's life, so prune keeps it. Export names are the disks' config keys. Each client is served by
 * an NbdConnection; all share one bounded ChunkCache. `close` ends every client, the listener and the
 * lease, and removes the socket.
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import PQueue from 'p-queue';
import { ColdvaultError, describeError, formatBytes, isLoopbackHost, type TaskLog } from '../../core/index.js';
import type { VersionKey } from '../../format/index.js';
import { ChunkReader, readQueue, readTrouble, readWindow } from '../chunk-reader.js';
import { checkIndexDigest } from '../restore-disk.js';
import { openVersion } from '../version-keys.js';
import { sourceOf, type SourceRef, type VersionLease, type VersionSource } from '../version-source.js';
import type { WorkerPool } from '../worker-pool.js';
import { ChunkCache } from './chunk-cache.js';
import { NbdConnection } from './nbd-connection.js';
import { type DiskTrouble, VersionDisk } from './version-disk.js';

/** 16 chunks of 4 MiB: 64 MiB of verified data kept for all clients together */
export const DEFAULT_CACHE_CHUNKS = 16;

export type ExportRequest = SourceRef & {
  pool: WorkerPool;
  guestId: string;
  version: number;
  key?: VersionKey;
  /** the disks to export by config key; default every disk of the version */
  disks?: readonly string[];
  /** a unix socket path, or a loopback TCP address */
  at: { socket: string } | { host: string; port: number };
  cacheChunks?: number;
  log: TaskLog;
};

export interface RunningExport {
  /** the socket path, or host:port */
  address: string;
  exports: Array<{ name: string; size: number; uri: string }>;
  /** chunks that failed a read (reported once each) */
  readonly troubles: readonly DiskTrouble[];
  close(): Promise<void>;
}

export async function startExport(req: ExportRequest): Promise<RunningExport> {
  checkAddress(req.at);
  const source = sourceOf(req);
  const lease = await source.lease(req.guestId, req.version, `export of guest ${req.guestId} version ${req.version}`);
  let opened: { disks: Map<string, VersionDisk>; release: () => void; troubles: DiskTrouble[] };
  try {
    opened = await openDisks(req, source);
  } catch (err) {
    await lease.release();
    throw err;
  }
  try {
    return await listen(req, opened, lease);
  } catch (err) {
    opened.release();
    await lease.release();
    throw err;
  }
}

function checkAddress(at: ExportRequest['at']): void {
  if ('socket' in at) return;
  if (!isLoopbackHost(at.host)) {
    throw new ColdvaultError(
      'USAGE',
      `--listen ${at.host}:${at.port}: an NBD export has no authentication; listen on a loopback address (127.0.0.1) or a unix socket (--socket)`,
    );
  }
}

async function openDisks(
  req: ExportRequest,
  source: VersionSource,
): Promise<{ disks: Map<string, VersionDisk>; release: () => void; troubles: DiskTrouble[] }> {
  const version = openVersion(req.pool, await source.readManifest(req.guestId, req.version), req.key, req);
  try {
    const wanted = req.disks ?? version.manifest.disks.map((d) => d.key);
    const unknown = wanted.filter((k) => !version.manifest.disks.some((d) => d.key === k));
    if (unknown.length > 0) {
      throw new ColdvaultError(
        'USAGE',
        `version ${req.version} of guest ${req.guestId} has no disk ${unknown.join(', ')} (it has ${version.manifest.disks.map((d) => d.key).join(', ') || 'none'})`,
      );
    }
    const troubles: DiskTrouble[] = [];
    const onTrouble = (t: DiskTrouble): void => {
      troubles.push(t);
      req.log.error(`disk ${t.disk}: chunk ${t.digest} is ${readTrouble(t.error)} (${describeError(t.error)}); reads of it fail with EIO`);
    };
    const reader = new ChunkReader(
      source.chunks,
      version.codec,
      readQueue(source.chunks, new PQueue({ concurrency: readWindow(source.chunks, version.codec) })),
    );
    const cache = new ChunkCache(req.cacheChunks ?? DEFAULT_CACHE_CHUNKS);
    const disks = new Map<string, VersionDisk>();
    for (const disk of version.manifest.disks.filter((d) => wanted.includes(d.key))) {
      const index = await source.readIndex(req.guestId, req.version, disk.index);
      checkIndexDigest(index, disk, `disk '${disk.key}' of guest ${req.guestId} version ${req.version}`);
      disks.set(disk.key, new VersionDisk(disk.key, disk.size, index, reader, cache, onTrouble));
    }
    return { disks, release: () => version.release(), troubles };
  } catch (err) {
    version.release();
    throw err;
  }
}

async function listen(
  req: ExportRequest,
  opened: { disks: Map<string, VersionDisk>; release: () => void; troubles: DiskTrouble[] },
  lease: VersionLease,
): Promise<RunningExport> {
  const sockets = new Set<Socket>();
  const table = { disks: opened.disks, describe: (d: VersionDisk) => `guest ${req.guestId} version ${req.version} disk ${d.name}` };
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    void new NbdConnection(socket, table, (m) => req.log.warn(m)).serve();
  });
  const address = await bind(server, req.at);
  const exports = [...opened.disks.values()].map((d) => ({ name: d.name, size: d.size, uri: uriOf(req.at, address, d.name) }));
  for (const e of exports) req.log.info(`exporting disk ${e.name} (${formatBytes(e.size)}) of guest ${req.guestId} version ${req.version}: ${e.uri}`);
  let closed = false;
  return {
    address,
    exports,
    troubles: opened.troubles,
    close: async () => {
      if (closed) return;
      closed = true;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if ('socket' in req.at) await unlink(req.at.socket).catch(() => undefined);
      opened.release();
      await lease.release();
    },
  };
}

async function bind(server: Server, at: ExportRequest['at']): Promise<string> {
  if ('socket' in at) await removeStaleSocket(at.socket);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('socket' in at) server.listen(at.socket, resolve);
    else server.listen(at.port, at.host, resolve);
  });
  if ('socket' in at) {
    await chmod(at.socket, 0o600);
    return at.socket;
  }
  const a = server.address();
  return typeof a === 'object' && a ? `${at.host}:${a.port}` : `${at.host}:${at.port}`;
}

/** A socket file left by an export that died is removed; a socket something still listens on, or any other file, is refused. */
async function removeStaleSocket(path: string): Promise<void> {
  const found = await lstat(path).catch(() => undefined);
  if (!found) return;
  if (!found.isSocket()) throw new ColdvaultError('USAGE', `--socket '${path}' exists and is not a socket; choose another path`);
  const listening = await new Promise<boolean>((resolve) => {
    const probe = connect(path, () => {
      probe.destroy();
      resolve(true);
    });
    probe.on('error', () => resolve(false));
  });
  if (listening) throw new ColdvaultError('USAGE', `--socket '${path}' is in use by another export; choose another path`);
  await unlink(path);
}

function uriOf(at: ExportRequest['at'], address: string, name: string): string {
  return 'socket' in at ? `nbd+unix:///${name}?socket=${at.socket}` : `nbd://${address}/${name}`;
}
