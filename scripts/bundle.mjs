#!/usr/bin/env node
// Build step after tsc: bundles the compiled CLI (dist/cli/main.js) and the chunk worker into
// dist/bundle/ with rolldown, so that a command loads a few files instead of about 120 modules.
// Why: start-up is part of every backup's and restore's time; bundled, `coldvault backup` reaches its
// first disk read about 25 ms sooner (bench/RESULTS.md). npm packages stay external (node_modules).
// Paths that modules resolve from import.meta.url (package.json, the native addon, the worker, the
// web UI) are written to work from dist/<layer>/ and from dist/bundle/ alike: the same depth.
import { rmSync } from 'node:fs';
import { build } from 'rolldown';

const out = new URL('../dist/bundle/', import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
await build({
  input: { coldvault: 'dist/cli/main.js', 'chunk-worker': 'dist/pipeline/chunk-worker.js' },
  platform: 'node',
  external: (id) => !id.startsWith('.') && !id.startsWith('/'),
  logLevel: 'warn',
  output: { dir: out, format: 'esm', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js', sourcemap: true },
});
