/**
 * Deterministic disk images for the bench, made of 4 MiB regions:
 *  - zero:   all-zero; in the main image half of them are written zeros (allocated) and half are
 *            holes (alternating in disk order), as a real disk image has both.
 *  - random: AES-128-CTR keystream from a per-region key (incompressible, unique per region).
 *  - text:   log-like lines with varying numbers (timestamps, pids, paths, sizes, request ids), from
 *            a seeded PRNG; zstd -3 makes them about 3.8x smaller.
 * The layout is shuffled with a seeded PRNG. The "nightly" copy has 2% of the non-zero regions
 * rewritten with fresh content of the same kind (same layout, same holes). The sparse image is
 * mostly hole with a few data regions at seeded places.
 * Everything is a function of the seed: the same bytes on every machine and every run.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, writeSync, readSync, existsSync, readFileSync, writeFileSync, rmSync, fsyncSync } from 'node:fs';

export const REGION = 4 * 1024 * 1024;
/** bump when the bytes an image is made of change, so cached images are made anew */
export const GENERATOR_VERSION = 3;

/** mulberry32: a small seeded PRNG giving uint32s */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function shuffle(array, next) {
  for (let i = array.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [array[i], array[j]] = [array[j], array[i]];
  }
  return array;
}

const ZEROS = Buffer.alloc(REGION);

export function randomRegion(seed, out = Buffer.allocUnsafe(REGION)) {
  const key = createHash('sha256').update(`coldvault-bench random ${seed}`).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  const bytes = cipher.update(ZEROS.subarray(0, out.length));
  bytes.copy(out);
  return out;
}

const LEVELS = ['INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR'];
const SERVICES = ['nginx', 'postgres', 'sshd', 'kernel', 'cron', 'app-api', 'app-worker', 'systemd'];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE'];
const PATHS = ['/api/v1/items', '/api/v1/users', '/api/v2/orders', '/static/app.js', '/healthz', '/login', '/api/v1/search', '/metrics'];
const STATUS = [200, 200, 200, 201, 204, 301, 404, 500];

export function textRegion(seed, out = Buffer.allocUnsafe(REGION)) {
  const next = rng(seed ^ 0x5eed7e47);
  let t = 1_795_000_000_000 + (next() % 1_000_000) * 1000;
  let off = 0;
  while (off < out.length) {
    t += (next() % 4) + (next() % 4);
    const line =
      `${new Date(t).toISOString()} ${LEVELS[next() & 7]} ${SERVICES[next() & 7]}[${1000 + (next() % 9000)}]: ` +
      `${METHODS[next() & 3]} ${PATHS[next() & 7]}/${next() % 100000} status=${STATUS[next() & 7]} bytes=${next() % 65536} ` +
      `dur=${(next() % 5000) / 10}ms req=${next().toString(16)}\n`;
    off += out.write(line, off, 'latin1');
  }
  return out;
}

/**
 * The plan of an image: size, regions [{kind, hole}], and for the nightly copy which regions change.
 * shares: {zero, random, text} fractions of the regions (text takes the rest).
 */
export function planImage({ regions, shares, seed, changeShare = 0.02 }) {
  const next = rng(seed);
  const nZero = Math.round(regions * shares.zero);
  const nRandom = Math.round(regions * shares.random);
  const nText = regions - nZero - nRandom;
  const kinds = shuffle([...Array(nZero).fill('zero'), ...Array(nRandom).fill('random'), ...Array(nText).fill('text')], next);
  let zeroSeen = 0;
  const plan = kinds.map((kind, i) => ({ index: i, kind, hole: kind === 'zero' ? zeroSeen++ % 2 === 1 : false, seed: seed * 100_003 + i }));
  const nonZero = plan.filter((r) => r.kind !== 'zero').map((r) => r.index);
  const nChange = Math.max(1, Math.round(regions * changeShare));
  const changed = shuffle(nonZero, next)
    .slice(0, nChange)
    .sort((a, b) => a - b);
  return { size: regions * REGION, regions: plan, changed, counts: { zero: nZero, random: nRandom, text: nText, holes: plan.filter((r) => r.hole).length } };
}

/** A mostly-hole image: `dataRegions` regions of data (text and random alternating) at seeded places. */
export function planSparse({ regions, dataRegions, seed }) {
  const next = rng(seed);
  const places = shuffle([...Array(regions).keys()], next)
    .slice(0, dataRegions)
    .sort((a, b) => a - b);
  const set = new Map(places.map((p, k) => [p, k % 2 === 0 ? 'text' : 'random']));
  const plan = [];
  for (const [index, kind] of set) plan.push({ index, kind, hole: false, seed: seed * 100_003 + index });
  return { size: regions * REGION, regions: plan, sparse: true, changed: [], counts: { data: dataRegions, holes: regions - dataRegions } };
}

function regionContent(region, variant, buf) {
  const seed = variant === 'nightly' ? region.seed + 7_777_777 : region.seed;
  if (region.kind === 'random') return randomRegion(seed, buf);
  if (region.kind === 'text') return textRegion(seed, buf);
  return ZEROS;
}

/**
 * Writes the image for `variant` ('full' or 'nightly') to `path` unless a stamp says the file there
 * already has these bytes. Holes are left by not writing; the size is set with ftruncate.
 * `copyFrom` (the 'full' image) gives the unchanged regions of a 'nightly' image without generating
 * them again.
 */
export function writeImage(path, plan, variant, stampKey, copyFrom) {
  const stampPath = `${path}.stamp`;
  const stamp = JSON.stringify({ v: GENERATOR_VERSION, variant, key: stampKey });
  if (existsSync(path) && existsSync(stampPath) && readFileSync(stampPath, 'utf8') === stamp) return false;
  rmSync(stampPath, { force: true });
  rmSync(path, { force: true });
  const changed = new Set(plan.changed);
  const buf = Buffer.allocUnsafe(REGION);
  const src = copyFrom ? openSync(copyFrom, 'r') : null;
  const fd = openSync(path, 'w');
  try {
    for (const region of plan.regions) {
      if (region.hole) continue;
      const v = variant === 'nightly' && changed.has(region.index) ? 'nightly' : 'full';
      let data;
      if (src !== null && v === 'full' && region.kind !== 'zero') {
        let got = 0;
        while (got < REGION) {
          const n = readSync(src, buf, got, REGION - got, region.index * REGION + got);
          if (n === 0) throw new Error(`${copyFrom} is shorter than its plan`);
          got += n;
        }
        data = buf;
      } else {
        data = regionContent(region, v, buf);
      }
      let done = 0;
      while (done < REGION) done += writeSync(fd, data, done, REGION - done, region.index * REGION + done);
    }
    ftruncateSync(fd, plan.size);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
    if (src !== null) closeSync(src);
  }
  writeFileSync(stampPath, stamp);
  return true;
}
