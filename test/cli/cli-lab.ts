/**
 * The CLI tests' lab: thin wrappers over the real CLI (`cli` from test/helpers/fixtures.ts: backup,
 * list, restore as JSON, failing the test with the CLI's stderr when a command fails) and read-only
 * looks at the datastore's files (chunk files, indexes, referenced digests, leftovers), computed from
 * the files themselves rather than through the engine.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { decodeFixedIndex, decodeManifest } from '../../src/format/index.js';
import { cli, type CliResult, type Lab, type Region, REGION, regionBytes } from '../helpers/fixtures.js';

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
  pruned?: number[];
  newBytes: number;
  storedBytes: number;
  size?: number;
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

export const CHUNK = 4 * 1024 * 1024;

export interface ListedVersion {
  id: string;
  version: number;
  time: string;
  name: string;
  disks: Array<{ key: string; size: number; sha256: string; volume?: string }>;
  verified: boolean;
  newBytes?: number;
  storedBytes?: number;
}

export async function listJson(lab: Lab): Promise<ListedVersion[]> {
  const r = await ok(['list', '--json', ...storeFlag(lab)]);
  return JSON.parse(r.stdout) as ListedVersion[];
}

export function restoreArgs(lab: Lab, id: string, version: number, newId: string, extra: string[] = []): string[] {
  return ['restore', id, '--version', String(version), '--new-id', newId, ...lab.flags, ...extra];
}

/** Every chunk file of the store (not temp files): digest, path, size. */
export function chunkFileList(storeDir: string): Array<{ hex: string; path: string; size: number }> {
  const root = join(storeDir, 'chunks');
  if (!existsSync(root)) return [];
  const out: Array<{ hex: string; path: string; size: number }> = [];
  for (const prefix of readdirSync(root)) {
    for (const name of readdirSync(join(root, prefix))) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const path = join(root, prefix, name);
      out.push({ hex: name, path, size: statSync(path).size });
    }
  }
  return out;
}

/** Every file below `dir`, relative, recursively ([] when it does not exist). */
export function filesUnder(dir: string, rel = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name), join(rel, e.name)) : [join(rel, e.name)]));
}

/** The chunk digests a `.fidx` file lists, in disk order; null for an all-zero chunk (format/fixed-index.ts). */
export function indexDigests(fidxPath: string): Array<string | null> {
  const file = readFileSync(fidxPath);
  const count = Number(file.readBigUInt64LE(24));
  const out: Array<string | null> = [];
  for (let i = 0; i < count; i++) {
    const slot = file.subarray(64 + i * 32, 64 + (i + 1) * 32);
    out.push(slot.every((b) => b === 0) ? null : slot.toString('hex'));
  }
  return out;
}

/** The sha256 of chunk `i` of an image as the store names it (SHA-256 of its plain bytes). */
export function chunkDigestOf(imagePath: string, i: number): string {
  const data = readFileSync(imagePath);
  return createHash('sha256')
    .update(data.subarray(i * CHUNK, (i + 1) * CHUNK))
    .digest('hex');
}

/**
 * The disk digest a manifest records, computed independently from the image: SHA-256 over the
 * SHA-256s of its 4 MiB chunks in order (zero chunks count with the digest of their zero bytes).
 */
export function diskDigestOf(imagePath: string): string {
  const data = readFileSync(imagePath);
  const outer = createHash('sha256');
  for (let off = 0; off < data.length; off += CHUNK) {
    outer.update(
      createHash('sha256')
        .update(data.subarray(off, off + CHUNK))
        .digest(),
    );
  }
  return outer.digest('hex');
}

/** Resolves with the exit code (or the signal) once the child has exited and its pipes closed. */
export function waitExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout?.resume();
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
