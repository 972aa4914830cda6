#!/usr/bin/env node
// Build step after tsc: copies the web UI's static files (src/server/ui) to dist/server/ui, where
// `coldvault serve` finds them (beside the compiled server). tsc copies only what it compiles.
// The charting library uPlot (npm `uplot`, a dependency) is served from the package: its ES module,
// its stylesheet and its licence go to dist/server/ui/vendor/uplot/ (no CDN).
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const from = new URL('../src/server/ui/', import.meta.url);
const to = new URL('../dist/server/ui/', import.meta.url);
rmSync(to, { recursive: true, force: true });
if (existsSync(from)) cpSync(from, to, { recursive: true });

const uplotDist = dirname(createRequire(import.meta.url).resolve('uplot')); // node_modules/uplot/dist
const vendor = new URL('vendor/uplot/', to);
mkdirSync(vendor, { recursive: true });
for (const file of ['uPlot.esm.js', 'uPlot.min.css']) cpSync(join(uplotDist, file), new URL(file, vendor));
cpSync(join(uplotDist, '..', 'LICENSE'), new URL('LICENSE', vendor));

// The tiny demo guest's /init script, beside the compiled src/cli/demo/tiny-guest.js.
const init = new URL('../src/cli/demo/tiny-guest-init', import.meta.url);
if (existsSync(init)) cpSync(init, new URL('../dist/cli/demo/tiny-guest-init', import.meta.url));
