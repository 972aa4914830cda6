#!/usr/bin/env node
/**
 * `node bench/lib/hash-regions.mjs FILE INDEX,INDEX,...`: reads those 4 MiB regions of FILE and
 * SHA-256s each, one after the other (sparse-disk.mjs hashRegions), and prints {bytes, seconds} as
 * JSON; seconds is the read-and-hash loop alone. Run as its own process, like the backup it is
 * compared with, so the page cache state is the same for both (the bench drops it before each).
 */
import { hashRegions } from './sparse-disk.mjs';

const [file, list] = process.argv.slice(2);
if (!file || !list) {
  process.stderr.write('usage: node bench/lib/hash-regions.mjs FILE INDEX,INDEX,...\n');
  process.exit(2);
}
process.stdout.write(`${JSON.stringify(hashRegions(file, list.split(',').map(Number)))}\n`);
