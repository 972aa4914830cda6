#!/usr/bin/env node
// Build step after tsc: copies the web UI's static files (src/server/ui) to dist/server/ui, where
// `coldvault serve` finds them (beside the compiled server). tsc copies only what it compiles.
import { cpSync, existsSync, rmSync } from 'node:fs';

const from = new URL('../src/server/ui/', import.meta.url);
const to = new URL('../dist/server/ui/', import.meta.url);
rmSync(to, { recursive: true, force: true });
if (existsSync(from)) cpSync(from, to, { recursive: true });

// The tiny demo guest's /init script, beside the compiled src/cli/demo/tiny-guest.js.
const init = new URL('../src/cli/demo/tiny-guest-init', import.meta.url);
if (existsSync(init)) cpSync(init, new URL('../dist/cli/demo/tiny-guest-init', import.meta.url));
