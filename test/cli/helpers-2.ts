/** Helpers for the CLI tests (errors, prune/gc, catalog): run the real CLI and look at the store's files. */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { decodeFixedIndex, decodeManifest } from '../../src/format/index.js';
import { cli, regionBytes, REGION, type CliResult, type Lab, type Region } from '../helpers/fixtures.js';

/** `--store <dir>` only: the flags of list, verify, prune, gc, protect and catalog. */
export const storeFlag = (lab: Lab): string[] => ['--store', lab.storeDir];

/** Runs the CLI and fails the test (with its stderr) unless it exits 0. */
export async function ok(args: string[]): Promise<CliResult> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`coldvault ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}

export async function okJson<T>(args: string[]): Promise<T> {
  return JSON.parse((await ok([...args, '--json'])).stdout) as T;
}

export async function initStore(lab: Lab, dir = lab.storeDir): Promise<void> {
  await ok(['datastore', 'init', dir]);
}

export interface BackupJson {
  id: string;
  version: number;
  ok: boolean;
  pruned: number[];
  newBytes: number;
  storedBytes: number;
}

export async function backup(lab: Lab, vmid: string, extra: string[] = []): Promise<BackupJson> {
  const [result] = await okJson<BackupJson[]>(['backup', vmid, ...lab.flags, ...extra]);
  expect(result?.ok).toBe(true);
  return result as BackupJson;
}

export interface ListEntry {
  id: string;
  version: number;
  time: string;
  protected: boolean;
  verified: boolean;
  disks: Array<{ key: string; volume: string; size: number; sha256: string }>;
  [k: string]: unknown;
}

export async function list(lab: Lab, vmid?: string): Promise<ListEntry[]> {
  return okJson<ListEntry[]>(['list', ...(vmid ? [vmid] : []), ...storeFlag(lab)]);
}

export async function versions(lab: Lab, vmid: string): Promise<number[]> {
  return (await list(lab, vmid)).map((v) => v.version);
}

/** The file behind a `local:<vmid>/<file>` volume of the lab's storage. */
export function volumePath(lab: Lab, volume: string): string {
  const m = /^local:(\d+)\/([^/]+)$/.exec(volume);
  if (!m) throw new Error(`unexpected volume '${volume}'`);
  return join(lab.storageDir, 'images', m[1] as string, m[2] as string);
}

/** Restores a version under a new id; returns the restored disk files by config key. */
export async function restore(lab: Lab, vmid: string, version: number, newId: string, extra: string[] = []): Promise<Map<string, string>> {
  const r = await okJson<{ volumes: Record<string, string>; config: string }>([
    'restore',
    vmid,
    '--version',
    String(version),
    '--new-id',
    newId,
    ...lab.flags,
    ...extra,
  ]);
  expect(existsSync(r.config)).toBe(true);
  return new Map(Object.entries(r.volumes).map(([key, volume]) => [key, volumePath(lab, volume)]));
}

export function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The last non-empty line of a command's stderr: where the CLI puts its error. */
export function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines[lines.length - 1] ?? '';
}

/** Writes an image region by region, each region given by kind and its own seed (so regions can be shared between images). */
export function writeRegions(path: string, regions: Array<{ kind: Region; seed: number }>): void {
  const fd = openSync(path, 'w');
  try {
    regions.forEach((r, i) => {
      if (r.kind !== 'zero') writeSync(fd, regionBytes(r.kind, r.seed), 0, REGION, i * REGION);
      else if (i === regions.length - 1) writeSync(fd, Buffer.alloc(1), 0, 1, (i + 1) * REGION - 1);
    });
  } finally {
    closeSync(fd);
  }
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Chunk file names (digest hex) in the store. */
export function chunkFiles(storeDir: string): Set<string> {
  return new Set(
    walk(join(storeDir, 'chunks'))
      .map((p) => p.slice(p.lastIndexOf('/') + 1))
      .filter((n) => /^[0-9a-f]{64}$/.test(n)),
  );
}

/** Total bytes of the chunk files. */
export function chunkBytes(storeDir: string): number {
  return walk(join(storeDir, 'chunks')).reduce((s, p) => s + statSync(p).size, 0);
}

/** Sets every chunk's mtime back, as if the backups that wrote them ran `ageMs` ago. */
export function ageChunks(storeDir: string, ageMs = 3_600_000): void {
  const then = new Date(Date.now() - ageMs);
  for (const p of walk(join(storeDir, 'chunks'))) utimesSync(p, then, then);
}

/** The digests every published version's indexes reference, read from the files (not from the engine). */
export function referencedChunks(storeDir: string): Set<string> {
  const out = new Set<string>();
  const guests = join(storeDir, 'guests');
  for (const g of existsSync(guests) ? readdirSync(guests) : []) {
    if (!/^\d+$/.test(g)) continue;
    for (const v of readdirSync(join(guests, g))) {
      if (!/^\d+$/.test(v)) continue;
      const dir = join(guests, g, v);
      const manifest = decodeManifest(readFileSync(join(dir, 'manifest.json')), dir);
      for (const d of manifest.disks) {
        for (const digest of decodeFixedIndex(readFileSync(join(dir, d.index)), d.index).digests) if (digest) out.add(digest.toString('hex'));
      }
    }
  }
  return out;
}

/** Entries of guests/<vmid> that are neither version folders nor `last-version` (staging, trash). */
export function leftovers(storeDir: string, vmid: string): string[] {
  const dir = join(storeDir, 'guests', vmid);
  return existsSync(dir) ? readdirSync(dir).filter((n) => !/^\d+$/.test(n) && n !== 'last-version') : [];
}
