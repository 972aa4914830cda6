/**
 * The cold-snapshot bench's raw disk: `regions` regions of 4 MiB, of which `dataRegions` (seeded
 * places) hold pseudo-random bytes (AES-CTR keystream, images.mjs randomRegion) and the rest are
 * holes. A "change" rewrites a seeded 1% of the data regions in place (pwrite into the same file,
 * as a guest writes: on XFS the written blocks get new extents, the base snapshot keeps the old ones).
 * hashRegions() is the reference a changed-extent nightly is held to: read those regions and SHA-256
 * each, one after the other in one thread. Everything is a function of the seed.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { REGION, randomRegion, rng } from './images.mjs';

function shuffled(n, next) {
  const a = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const sorted = (xs) => [...xs].sort((a, b) => a - b);

/** {size, regions, data: sorted indices of the data regions, seed} */
export function planDisk({ regions, dataRegions, seed }) {
  const data = sorted(shuffled(regions, rng(seed)).slice(0, dataRegions));
  return { size: regions * REGION, regions, data, seed };
}

/** The data regions that change `round` (1, 2, ...): `share` of them, seeded by the round. */
export function changedRegions(plan, share, round) {
  const n = Math.max(1, Math.round(plan.data.length * share));
  const picks = shuffled(plan.data.length, rng(plan.seed * 31 + round)).slice(0, n);
  return sorted(picks.map((i) => plan.data[i]));
}

const regionSeed = (plan, index, round) => plan.seed * 100_003 + index + round * 7_777_777;

function writeRegions(fd, plan, indices, round) {
  const buf = Buffer.allocUnsafe(REGION);
  for (const index of indices) {
    randomRegion(regionSeed(plan, index, round), buf);
    for (let done = 0; done < REGION; ) done += writeSync(fd, buf, done, REGION - done, index * REGION + done);
  }
}

/** Writes the disk at `path` (new file): the data regions, holes elsewhere, the size set with ftruncate; fsynced. */
export function writeDisk(path, plan) {
  const fd = openSync(path, 'w', 0o600);
  try {
    writeRegions(fd, plan, plan.data, 0);
    ftruncateSync(fd, plan.size);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Rewrites `indices` in place with the content of `round`; fsynced. */
export function rewriteRegions(path, plan, indices, round) {
  const fd = openSync(path, 'r+');
  try {
    writeRegions(fd, plan, indices, round);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads each region of `indices` from `path` and SHA-256s it; {bytes, seconds} of the loop alone. */
export function hashRegions(path, indices) {
  const buf = Buffer.allocUnsafe(REGION);
  const fd = openSync(path, 'r');
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  try {
    for (const index of indices) {
      let got = 0;
      while (got < REGION) {
        const n = readSync(fd, buf, got, REGION - got, index * REGION + got);
        if (n === 0) break;
        got += n;
      }
      createHash('sha256').update(buf.subarray(0, got)).digest();
      bytes += got;
    }
  } finally {
    closeSync(fd);
  }
  return { bytes, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}
