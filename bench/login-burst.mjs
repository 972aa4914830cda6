#!/usr/bin/env node
/**
 * How a burst of 50 logins affects a backup's reads in the same process (`coldvault serve` runs the
 * API and the backups in one process, and both use libuv's 4-thread pool: scrypt there, file reads
 * and writes too). `node bench/login-burst.mjs [--dir DIR] [--rounds N] [--size-mib N]` after
 * `npm run build`; prints a Markdown table (bench/LOGIN-BURST.md keeps the figures of a run).
 *
 * The reader does what pipeline/backup-disk.ts does: 4 MiB reads through a FileHandle, 2 in flight,
 * over an image kept in the page cache (so the pool, not the disk, is what it waits for). Each
 * scenario fires its burst at t0 and measures the bytes read in the 4 s from t0 (MB/s), the slowest
 * 250 ms slice in them (the stall), and how long until every login was answered:
 *   idle          no logins (the baseline)
 *   before        50 scrypt hashes at once, as the login route did before the limiter counted
 *                 attempts up front and hashes were queued (every parallel attempt passed the check)
 *   one address   50 wrong logins from one address through the real server (createServer from dist/)
 *   50 addresses  50 wrong logins from 50 addresses through the real server
 */
import { randomFillSync, scrypt } from 'node:crypto';
import { mkdirSync, openSync, writeSync, closeSync, existsSync, statSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const REPO = resolve(import.meta.dirname, '..');
const { values: opt } = parseArgs({
  options: {
    dir: { type: 'string', default: '/var/tmp/coldvault-login-burst' },
    rounds: { type: 'string', default: '3' },
    'size-mib': { type: 'string', default: '512' },
  },
});
const dir = resolve(opt.dir);
const rounds = Number(opt.rounds);
const size = Number(opt['size-mib']) * 1024 * 1024;
const CHUNK = 4 * 1024 * 1024;
const WINDOW_MS = 4000;
const SLICE_MS = 250;

const { createServer, ensureAdminPassword } = await import(join(REPO, 'dist/server/index.js'));
const { JobStore, openStateDb, StopJournal, TaskStore } = await import(join(REPO, 'dist/jobs/index.js'));
const { createDriver } = await import(join(REPO, 'dist/guests/hypervisor/index.js'));

function makeImage(path) {
  if (existsSync(path) && statSync(path).size === size) return;
  const fd = openSync(path, 'w');
  const buf = Buffer.alloc(CHUNK);
  for (let done = 0; done < size; done += CHUNK) writeSync(fd, randomFillSync(buf));
  closeSync(fd);
}

/** Reads the image round and round, 2 reads of 4 MiB in flight; `bytes` grows as reads complete. */
function startReader(path) {
  const state = { bytes: 0, stop: false, done: undefined };
  state.done = (async () => {
    const file = await open(path, 'r');
    let next = 0;
    const worker = async () => {
      const buf = Buffer.alloc(CHUNK);
      while (!state.stop) {
        const position = next;
        next = (next + CHUNK) % size;
        const { bytesRead } = await file.read(buf, 0, CHUNK, position);
        state.bytes += bytesRead;
      }
    };
    await Promise.all([worker(), worker()]);
    await file.close();
  })();
  return state;
}

async function makeServer() {
  const stateDir = join(dir, 'state');
  rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(join(dir, 'guests'), { recursive: true });
  const db = openStateDb(stateDir);
  await ensureAdminPassword(db, 'the-right-password');
  const state = { db, jobs: new JobStore(db), tasks: new TaskStore(db, stateDir), journal: new StopJournal(db) };
  const config = { node: 'bench', stateDir, guestsDir: join(dir, 'guests'), storages: {}, datastores: {}, zstdLevel: 1 };
  const app = await createServer({ config, state, driver: createDriver({ driver: 'none' }), uiDir: null });
  await app.ready();
  return {
    app,
    close: async () => {
      await app.close();
      db.close();
    },
  };
}

const oldScrypt = () =>
  new Promise((res, rej) =>
    scrypt('wrong', randomFillSync(Buffer.alloc(16)), 32, { N: 32768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }, (e, k) => (e ? rej(e) : res(k))),
  );
const login = (app, ip) =>
  app
    .inject({ method: 'POST', url: '/api/v1/login', payload: { password: 'wrong' }, headers: { 'x-requested-with': 'coldvault' }, remoteAddress: ip })
    .then((r) => r.statusCode);

/** One measurement: the burst fired at t0; reads sampled every slice for the window. */
async function measureBurst(reader, burst) {
  const samples = [reader.bytes];
  const t0 = performance.now();
  let settled;
  const answered = burst().then((codes) => {
    settled = performance.now() - t0;
    return codes;
  });
  for (let t = SLICE_MS; t <= WINDOW_MS; t += SLICE_MS) {
    await sleep(Math.max(0, t0 + t - performance.now()));
    samples.push(reader.bytes);
  }
  const codes = await answered;
  const mbps = (bytes, ms) => bytes / 1e6 / (ms / 1000);
  const slices = samples.slice(1).map((b, i) => mbps(b - samples[i], SLICE_MS));
  return { mbps: mbps(samples.at(-1) - samples[0], WINDOW_MS), slowest: Math.min(...slices), settledMs: settled ?? NaN, codes };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const tally = (codes) =>
  Object.entries(codes.reduce((n, c) => ({ ...n, [c]: (n[c] ?? 0) + 1 }), {}))
    .map(([c, n]) => `${n}×${c}`)
    .join(' ');

mkdirSync(dir, { recursive: true });
const image = join(dir, 'image.raw');
makeImage(image);
const server = await makeServer();
const scenarios = {
  idle: async () => [],
  before: () => Promise.all(Array.from({ length: 50 }, oldScrypt)).then((keys) => keys.map(() => 'hash')),
  'one address': () => Promise.all(Array.from({ length: 50 }, () => login(server.app, '10.0.0.1'))),
  '50 addresses': () => Promise.all(Array.from({ length: 50 }, (_v, i) => login(server.app, `10.0.1.${i + 1}`))),
};
const reader = startReader(image);
await sleep(1500); // warm: the image into the page cache, the reader at speed
const results = {};
for (let round = 0; round < rounds; round++) {
  for (const [name, burst] of Object.entries(scenarios)) {
    if (name !== 'before' && name !== 'idle') await server.close().then(async () => Object.assign(server, await makeServer())); // a fresh limiter each time
    (results[name] ??= []).push(await measureBurst(reader, burst));
    await sleep(1000);
  }
}
reader.stop = true;
await reader.done;
await server.close();

console.log(
  `login burst vs backup reads: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 4}, node ${process.version}, image ${size / 1024 / 1024} MiB (page cache), ${rounds} rounds, medians\n`,
);
console.log('| scenario | reads MB/s in the 4 s from the burst | slowest 250 ms slice MB/s | all logins answered after | answers |');
console.log('|---|---|---|---|---|');
for (const [name, list] of Object.entries(results)) {
  console.log(
    `| ${name} | ${median(list.map((r) => r.mbps)).toFixed(0)} | ${median(list.map((r) => r.slowest)).toFixed(0)} | ${name === 'idle' ? '–' : `${(median(list.map((r) => r.settledMs)) / 1000).toFixed(2)} s`} | ${tally(list[0].codes) || '–'} |`,
  );
}
