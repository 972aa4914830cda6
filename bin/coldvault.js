#!/usr/bin/env node
// The coldvault command: runs the bundled CLI (npm run build makes dist/bundle/, see scripts/bundle.mjs),
// or the unbundled tsc output where only `tsc` was run.
let cli;
try {
  cli = await import('../dist/bundle/coldvault.js');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/bundle/coldvault.js')) throw err;
  cli = await import('../dist/cli/main.js');
}

process.exitCode = await cli.main(process.argv.slice(2));
