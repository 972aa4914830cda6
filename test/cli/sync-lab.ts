/**
 * The sync tests' lab: node1, a real `coldvault serve` (plain HTTP on 127.0.0.1) whose datastore
 * `main` holds versions made by real local backups (`coldvault backup --store` on its folder), a
 * scoped token it issued (`coldvault token create node2 --role backup --store main`), and node2's
 * config, whose cluster.nodes names node1 with that token. `sync` runs the real `coldvault sync`
 * as node2; `restoreFrom` restores a version of a local store with `coldvault restore`; the image's
 * SHA-256 at each backup is kept to compare restores with. A StallingProxy sits between node2 and
 * node1 when a test must stop node1 in the middle of a sync: it forwards node1's answers until a
 * number of bytes, then holds the rest, so the test kills node1 at a known point.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { expect } from 'vitest';
import { cli, type CliResult, imagePath, type Lab, makeLab, type Region, rewriteRegion, writeGuest, writeImage } from '../helpers/fixtures.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { indexDigests, restore } from './cli-lab.js';

export interface SyncJson {
  from: string;
  to: string;
  ok: boolean;
  guests: Array<{
    id: string;
    ok: boolean;
    pulled: number[];
    present: number[];
    skipped: Array<{ version: number; reason: string }>;
    pruned: number[];
    error?: string;
    code?: string;
  }>;
  chunks: { fetched: number; fetchedBytes: number; present: number };
  wire: { receivedBytes: number; sentBytes: number; requests: number };
}

export interface SyncLab extends Lab {
  /** node1's datastore `main` */
  node1Store: string;
  node1Config: string;
  token: string;
  /** SHA-256 of guest `id`'s disk image when version `v` was made: key `id/v` */
  imageAt: Map<string, string>;
}

export const GUESTS: Record<string, Region[]> = {
  '101': ['random', 'zero', 'text', 'random'],
  '102': ['text', 'random', 'random'],
};

export const disk = (lab: Lab, id: string): string => imagePath(lab, id, `vm-${id}-disk-0.raw`);

export async function makeSyncLab(prefix: string): Promise<SyncLab> {
  const base = makeLab(prefix);
  const node1Store = join(base.root, 'node1-main');
  const node1Config = join(base.root, 'node1.json');
  const config = { node: 'node1', stateDir: join(base.root, 'node1-state'), guestsDir: base.guestsDir, storages: { local: base.storageDir } };
  writeFileSync(node1Config, JSON.stringify({ ...config, datastores: { main: node1Store }, hypervisor: { driver: 'none' } }));
  await ok(['datastore', 'init', node1Store]);
  const made = await ok(['token', 'create', 'node2', '--role', 'backup', '--store', 'main', '--config', node1Config]);
  const lab: SyncLab = { ...base, node1Store, node1Config, token: made.stdout.split('\n')[0] as string, imageAt: new Map() };
  for (const [id, regions] of Object.entries(GUESTS)) {
    writeGuest(lab, id, [{ key: 'scsi0', file: `vm-${id}-disk-0.raw` }]);
    writeImage(disk(lab, id), regions, Number(id));
  }
  return lab;
}

/** A new version of `id` in node1's store (a real backup); `change` rewrites one region of its disk first. */
export async function backupOnNode1(lab: SyncLab, id: string, change?: { region: number; seed: number }): Promise<number> {
  if (change) rewriteRegion(disk(lab, id), change.region, 'random', change.seed);
  const made = await ok(['backup', id, '--store', lab.node1Store, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`, '--json']);
  const version = (JSON.parse(made.stdout) as Array<{ version: number }>)[0]?.version as number;
  lab.imageAt.set(`${id}/${version}`, sha256Of(disk(lab, id)));
  return version;
}

export function startNode1(lab: SyncLab): Promise<ServeProcess> {
  return startServe(['--config', lab.node1Config, '--listen', '127.0.0.1:0']);
}

/** node2's config: its own state, datastores `usb` (when given), and node1 at `url` in cluster.nodes. */
export function node2Config(lab: SyncLab, url: string, extra: Record<string, unknown> = {}): string {
  const path = join(lab.root, 'node2.json');
  const nodes = [
    { name: 'node1', url, token: lab.token },
    { name: 'node2', url: 'http://127.0.0.1:1' },
  ];
  const config = { node: 'node2', stateDir: join(lab.root, 'node2-state'), guestsDir: lab.guestsDir, storages: { local: lab.storageDir } };
  writeFileSync(path, JSON.stringify({ ...config, hypervisor: { driver: 'none' }, cluster: { nodes }, ...extra }));
  return path;
}

/** `coldvault sync --from node1:main --to STORE ... --json` as node2: the exit code and the parsed result. */
export async function sync(config: string, to: string, extra: string[] = []): Promise<{ run: CliResult; json: SyncJson }> {
  const run = await cli(['sync', '--from', 'node1:main', '--to', to, ...extra, '--config', config, '--json']);
  expect(run.stdout, run.stderr).not.toBe('');
  return { run, json: JSON.parse(run.stdout) as SyncJson };
}

export const guest = (json: SyncJson, id: string): SyncJson['guests'][number] => json.guests.find((g) => g.id === id) as SyncJson['guests'][number];

/** Restores version `version` of `id` from `storeDir` as `newId`; the SHA-256 of the restored disk. */
export async function restoredHash(lab: SyncLab, storeDir: string, id: string, version: number, newId: string): Promise<string> {
  const flags = ['--store', storeDir, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`];
  const disks = await restore({ ...lab, storeDir, flags }, id, version, newId);
  return sha256Of(disks.get('scsi0') as string);
}

/** The distinct chunks the indexes of these versions of `id` in `storeDir` name. */
export function versionChunks(storeDir: string, id: string, versions: number[]): Set<string> {
  const all = versions.flatMap((v) => indexDigests(join(storeDir, 'guests', id, String(v), 'scsi0.fidx')));
  return new Set(all.filter((d): d is string => d !== null));
}

export function sha256Of(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function ok(args: string[]): Promise<CliResult> {
  const r = await cli(args);
  expect(r.code, `coldvault ${args.join(' ')}:\n${r.stderr}`).toBe(0);
  return r;
}

/** A TCP proxy on 127.0.0.1 that forwards node1's answers up to `limit` bytes, then holds everything after. */
export class StallingProxy {
  url = '';
  private forwarded = 0;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private onStall: (() => void) | undefined;
  /** resolves once `limit` bytes of answers went through */
  readonly stalled = new Promise<void>((resolve) => (this.onStall = resolve));

  private constructor(target: URL, limit: number) {
    this.server = createServer((client) => this.pipe(client, target.hostname, Number(target.port), limit));
  }

  static async start(target: string, limit: number): Promise<StallingProxy> {
    const proxy = new StallingProxy(new URL(target), limit);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.url = `http://127.0.0.1:${(proxy.server.address() as { port: number }).port}`;
    return proxy;
  }

  private pipe(client: Socket, host: string, port: number, limit: number): void {
    const upstream = connect(port, host);
    for (const s of [client, upstream]) this.sockets.add(s);
    client.on('data', (data: Buffer) => upstream.write(data));
    upstream.on('data', (data: Buffer) => {
      if (this.forwarded >= limit) return this.onStall?.();
      this.forwarded += data.length;
      client.write(data);
    });
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
