/**
 * A lab for the RemoteStore tests: a guests dir with generated disks, a *source* datastore filled by
 * real local backups (`coldvault backup`: the pipeline's own chunking, blobs, indexes and manifests, as
 * the pushing node's own store would hold them), and config files for real `coldvault serve`
 * processes (node `node1`, datastores `main` and `other`, plain HTTP on 127.0.0.1 or `tls: "auto"`)
 * with scoped tokens made by `coldvault token create`. `push` drives the whole protocol through the
 * client under test; `restoreFrom` restores a pushed version on the server's store with `coldvault restore`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { restore } from '../cli/cli-lab.js';
import { cli, imagePath, makeLab, writeGuest, writeImage, type Lab, type Region } from '../helpers/fixtures.js';
import { Datastore } from '../../dist/datastore/index.js';
import type { Manifest } from '../../dist/format/index.js';
import { RemoteStore, type RemoteStoreOptions, type RemoteUpload } from '../../dist/targets/index.js';

/** A version of the source store: its manifest, the other files, the distinct stored chunks. */
export interface SourceVersion {
  manifest: Manifest;
  files: Map<string, Buffer>;
  digests: string[];
}

export interface ServeConfig {
  path: string;
  stores: { main: string; other: string };
}

export interface RemoteLab extends Lab {
  source: Datastore;
  versions: Record<string, SourceVersion>;
  /** writes a serve config (own state dir and datastores, initialised) */
  serveConfig(name: string, extra?: Record<string, unknown>): Promise<ServeConfig>;
}

export const GUESTS: Record<string, Region[]> = {
  '101': ['random', 'zero', 'text', 'random'],
  '102': ['text', 'random', 'random'],
  '103': ['random', 'text'],
};

export async function makeRemoteLab(): Promise<RemoteLab> {
  const lab = makeLab('cv-rstore-');
  const sourceDir = join(lab.root, 'node2-store');
  await Datastore.init(sourceDir);
  for (const [id, regions] of Object.entries(GUESTS)) {
    writeGuest(lab, id, [{ key: 'scsi0', file: `vm-${id}-disk-0.raw` }]);
    writeImage(imagePath(lab, id, `vm-${id}-disk-0.raw`), regions, Number(id));
    const made = await cli(['backup', id, '--store', sourceDir, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
    expect(made.code, made.stderr).toBe(0);
  }
  const source = await Datastore.open(sourceDir);
  const versions: Record<string, SourceVersion> = {};
  for (const id of Object.keys(GUESTS)) versions[id] = await readVersion(source, id, 1);
  return { ...lab, source, versions, serveConfig: (name, extra) => serveConfig(lab, name, extra) };
}

async function serveConfig(lab: Lab, name: string, extra: Record<string, unknown> = {}): Promise<ServeConfig> {
  const dir = join(lab.root, name);
  mkdirSync(dir);
  const stores = { main: join(dir, 'main'), other: join(dir, 'other') };
  for (const store of Object.values(stores)) await Datastore.init(store);
  const path = join(dir, 'coldvault.json');
  const config = { node: 'node1', stateDir: join(dir, 'state'), guestsDir: lab.guestsDir, storages: { local: lab.storageDir }, datastores: stores };
  writeFileSync(path, JSON.stringify({ ...config, hypervisor: { driver: 'none' }, ...extra }));
  return { path, stores };
}

/** A token made on the server by `coldvault token create NAME --role ROLE [--store STORE]`. */
export async function makeToken(config: ServeConfig, name: string, role: string, store?: string): Promise<string> {
  const made = await cli(['token', 'create', name, '--role', role, ...(store ? ['--store', store] : []), '--config', config.path]);
  expect(made.code, made.stderr).toBe(0);
  return made.stdout.split('\n')[0] as string;
}

async function readVersion(source: Datastore, guestId: string, version: number): Promise<SourceVersion> {
  const manifest = await source.readManifest(guestId, version);
  const files = new Map<string, Buffer>();
  const digests = new Set<string>();
  for (const name of ['qemu-server.conf', 'backup.log']) files.set(name, await source.readVersionFile(guestId, version, name));
  for (const disk of manifest.disks) {
    files.set(disk.index, await source.readVersionFile(guestId, version, disk.index));
    for (const d of (await source.readIndex(guestId, version, disk.index)).digests) if (d) digests.add(d.toString('hex'));
  }
  return { manifest, files, digests: [...digests] };
}

/** The whole protocol for one source version through `remote`: open, known, the missing chunks side by side, the files, finish. */
export async function push(
  remote: RemoteStore,
  source: Datastore,
  src: SourceVersion,
): Promise<{ upload: RemoteUpload; missing: string[]; version: number; bytesReceived: number }> {
  const upload = await remote.openUpload({ guestId: src.manifest.guestId, node: src.manifest.node });
  const missing = await upload.known(src.digests);
  await Promise.all(missing.map(async (hex) => upload.putChunk(hex, await source.chunks.readBlob(hex))));
  for (const [name, bytes] of src.files) await upload.putFile(name, bytes);
  const { version, bytesReceived } = await upload.finish(src.manifest);
  return { upload, missing, version, bytesReceived };
}

/** Restores `version` of `guestId` from the server's `main` store with `coldvault restore`; the restored disk's path. */
export async function restoreFrom(lab: Lab, storeDir: string, guestId: string, version: number, newId: string): Promise<string> {
  const flags = ['--store', storeDir, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`];
  const disks = await restore({ ...lab, storeDir, flags }, guestId, version, newId);
  return disks.get('scsi0') as string;
}

/** A client of `url` with the test's defaults (short retries: a dead server is found out quickly). */
export function client(url: string, token: string, extra: Partial<RemoteStoreOptions> = {}): RemoteStore {
  return new RemoteStore({ url, token, store: 'main', retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 200 }, ...extra });
}
