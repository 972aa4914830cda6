/**
 * coldvault without its native addon, for cuts of the page-cache write path: bin/, dist/ and
 * package.json of this checkout are copied to a folder in node_modules/.cache (inside the checkout,
 * so that npm packages resolve), where `build/Release/coldvault_native.node` is not found. That build
 * writes chunks through the page cache (writeFileDurable: write, fdatasync, rename) instead of
 * O_DIRECT, restores disks through the page cache, and finds holes by reading: the path a filesystem
 * that refuses O_DIRECT (FUSE: exFAT, NTFS) takes.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../fixtures.js';

export interface PageCacheCli {
  /** its bin/coldvault.js */
  cli: string;
  remove(): void;
}

/** Copies not yet removed: removeAllPageCacheClis() cleans up after an interrupted run. */
const live = new Set<string>();

export function makePageCacheCli(repo = REPO): PageCacheCli {
  const parent = join(repo, 'node_modules', '.cache');
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, 'coldvault-page-cache-'));
  live.add(dir);
  for (const part of ['bin', 'dist', 'package.json']) cpSync(join(repo, part), join(dir, part), { recursive: true });
  return { cli: join(dir, 'bin', 'coldvault.js'), remove: () => removeCopy(dir) };
}

function removeCopy(dir: string): void {
  live.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

export function removeAllPageCacheClis(): void {
  for (const dir of [...live]) removeCopy(dir);
}
