/**
 * Small helpers for the CLI end-to-end tests (roundtrip, dedup, corruption, crash): thin wrappers
 * over the real CLI (`cli` from test/helpers/fixtures.ts) and read-only looks at the datastore's files.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { expect } from 'vitest';
import { cli, type CliResult, type Lab } from '../helpers/fixtures.js';

export const CHUNK = 4 * 1024 * 1024;

/** `--store <dir>` only (list / verify accept no other store flags). */
export const storeFlag = (lab: Lab): string[] => ['--store', lab.storeDir];

/** Runs the CLI and fails the test (showing stderr) unless it exits 0. */
export async function ok(args: string[]): Promise<CliResult> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`coldvault ${args.join(' ')} exited ${r.code}\n${r.stderr}\n${r.stdout}`);
  return r;
}

export async function initStore(lab: Lab): Promise<void> {
  await ok(['datastore', 'init', lab.storeDir]);
}

export interface BackupJson {
  id: string;
  version: number;
  ok: boolean;
  newBytes: number;
  storedBytes: number;
  size: number;
}

/** `backup <id> --json` of one guest; returns its result object. */
export async function backup(lab: Lab, id: string, extra: string[] = []): Promise<BackupJson> {
  const r = await ok(['backup', id, '--json', ...lab.flags, ...extra]);
  const parsed = JSON.parse(r.stdout) as BackupJson[];
  expect(parsed).toHaveLength(1);
  expect(parsed[0]?.ok).toBe(true);
  return parsed[0] as BackupJson;
}

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
export function chunkFiles(storeDir: string): Array<{ hex: string; path: string; size: number }> {
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

/** Sum of the chunk files' sizes: what the chunk store occupies (apparent size). */
export function chunkBytes(storeDir: string): number {
  return chunkFiles(storeDir).reduce((s, c) => s + c.size, 0);
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
