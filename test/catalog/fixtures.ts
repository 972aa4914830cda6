/**
 * Test fixtures: a small DatastoreReader over real files (`<dir>/guests/<vmid>/<version>/manifest.json`
 * written with encodeManifest), plus helpers to publish, remove, protect and corrupt versions.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATASTORE_FORMAT, decodeManifest, encodeManifest, type DatastoreIdentity, type Manifest } from '../../src/format/index.js';
import type { CatalogReader } from '../../src/catalog/index.js';

export async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'coldvault-catalog-'));
}

export function makeManifest(guestId: string, version: number, overrides: Partial<Manifest> = {}): Manifest {
  const size = 8 * 1024 * 1024 * (version + 1);
  return {
    format: DATASTORE_FORMAT,
    guestId,
    guestName: `vm${guestId}`,
    version,
    time: new Date(Date.UTC(2025, 0, version, 2, 0, 0)).toISOString(),
    node: 'pve1',
    config: 'cores: 1\nmemory: 256\n',
    disks: [
      {
        key: 'scsi0',
        volume: `local:${guestId}/vm-${guestId}-disk-0.raw`,
        storage: 'local',
        format: 'raw',
        size,
        index: 'scsi0.fidx',
        sha256: `${guestId}${version}`.padEnd(64, 'a'),
        chunkSize: 4 * 1024 * 1024,
        chunkCount: size / (4 * 1024 * 1024),
        zeroChunks: 1,
        zeroBytes: 4 * 1024 * 1024,
      },
      {
        key: 'efidisk0',
        volume: `local:${guestId}/vm-${guestId}-disk-1.raw`,
        storage: 'local',
        format: 'raw',
        size: 1024,
        index: 'efidisk0.fidx',
        sha256: 'b'.repeat(64),
        chunkSize: 4 * 1024 * 1024,
        chunkCount: 1,
        zeroChunks: 0,
        zeroBytes: 0,
      },
    ],
    excluded: [],
    storedBytes: 1000 * version,
    newBytes: 2000 * version,
    durationSeconds: 3,
    ...overrides,
  };
}

async function listNumbers(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((name) => /^[0-9]+$/.test(name));
  } catch {
    return [];
  }
}

/** A DatastoreReader over a directory, as the real one will read it. */
export class FileReader implements CatalogReader {
  readonly identity: DatastoreIdentity = { format: DATASTORE_FORMAT, id: 'test', created: '2025-01-01T00:00:00Z', chunkSize: 4 << 20 };
  manifestReads = 0;

  constructor(readonly dir: string) {}

  async listGuestIds(): Promise<string[]> {
    return listNumbers(join(this.dir, 'guests'));
  }

  async listVersionNumbers(guestId: string): Promise<number[]> {
    return (await listNumbers(join(this.dir, 'guests', guestId))).map(Number);
  }

  async readManifest(guestId: string, version: number): Promise<Manifest> {
    this.manifestReads++;
    const file = await readFile(join(versionDir(this.dir, guestId, version), 'manifest.json'));
    return decodeManifest(file, `guests/${guestId}/${version}`);
  }
}

/** The same reader, also able to see the `protected` file. */
export class ProtectingReader extends FileReader {
  async isProtected(guestId: string, version: number): Promise<boolean> {
    return stat(join(versionDir(this.dir, guestId, version), 'protected')).then(
      () => true,
      () => false,
    );
  }
}

export function versionDir(dir: string, guestId: string, version: number): string {
  return join(dir, 'guests', guestId, String(version));
}

export async function publish(dir: string, manifest: Manifest): Promise<Manifest> {
  const folder = versionDir(dir, manifest.guestId, manifest.version);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'manifest.json'), encodeManifest(manifest));
  return manifest;
}

export async function unpublish(dir: string, guestId: string, version: number): Promise<void> {
  await rm(versionDir(dir, guestId, version), { recursive: true, force: true });
}

export async function corrupt(dir: string, guestId: string, version: number): Promise<void> {
  const file = join(versionDir(dir, guestId, version), 'manifest.json');
  const text = (await readFile(file, 'utf8')).replace('"node": "pve1"', '"node": "pve2"');
  await writeFile(file, text);
}

export async function protect(dir: string, guestId: string, version: number): Promise<void> {
  await writeFile(join(versionDir(dir, guestId, version), 'protected'), '');
}

/** Publishes guests 101 (versions 1-3), 1000 (1) and 200 (1, 2): numeric order is 101, 200, 1000. */
export async function seed(dir: string): Promise<Manifest[]> {
  const refs: Array<[string, number]> = [
    ['101', 1],
    ['101', 2],
    ['101', 3],
    ['1000', 1],
    ['200', 1],
    ['200', 2],
  ];
  return Promise.all(refs.map(([guest, version]) => publish(dir, makeManifest(guest, version))));
}
