#!/usr/bin/env node
/**
 * Writes test/durations.json: how long each test file took in the last `npm test` of this checkout (ms,
 * from vitest's results cache in node_modules/.vite). vitest.config.ts starts the longest files first,
 * so the two lanes end together instead of with a long file alone (a clean checkout has no cache, and
 * vitest then orders by file size). Run it after a full `npm test` when files were added or grew.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const cacheDir = join(root, 'node_modules', '.vite', 'vitest');
const caches = readdirSync(cacheDir)
  .map((d) => join(cacheDir, d, 'results.json'))
  .filter((f) => {
    try {
      return statSync(f).isFile();
    } catch {
      return false;
    }
  })
  .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
if (caches.length === 0) throw new Error(`no vitest results in ${cacheDir}: run npm test first`);
const { results } = JSON.parse(readFileSync(caches[0], 'utf8'));
const durations = Object.fromEntries(
  results
    .map(([key, r]) => [key.slice(key.indexOf(':') + 1), Math.round(r.duration)])
    .filter(([file]) => file.startsWith('test/') && existsSync(join(root, file)))
    .sort(([a], [b]) => (a < b ? -1 : 1)),
);
writeFileSync(join(root, 'test', 'durations.json'), `${JSON.stringify(durations, null, 1)}\n`);
console.log(`test/durations.json: ${Object.keys(durations).length} files, from ${caches[0]}`);
