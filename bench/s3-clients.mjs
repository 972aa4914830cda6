#!/usr/bin/env node
/**
 * Which S3 client the object-storage datastore uses (issue 14): coldvault's own (dist/targets/s3,
 * SigV4 on node:http, the body read into the caller's buffer) against @aws-sdk/client-s3 (v3) and
 * minio, on one real Ceph radosgw started here (scripts/radosgw.mjs, tcp_nodelay=1), in one
 * run: PUT then GET of N objects of 4 MiB (a chunk's size, incompressible), 8 in flight, each client
 * with keep-alive connections. Rounds interleave the clients, so the machine's other load hits all
 * alike. Reports MB/s and this process's CPU seconds per GiB (radosgw runs on the same 2 cores, so
 * a client's CPU is taken from the service's). `node bench/s3-clients.mjs [--objects N] [--rounds R]`
 * writes the block "s3-clients" of bench/RESULTS.md. Needs `npm run build` and root (ceph).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client as AwsClient } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import * as Minio from 'minio';
import { S3Client } from '../dist/targets/index.js';
import { loadAverage } from './lib/machine.mjs';
import { median } from './lib/report.mjs';
import { replaceBlock } from './lib/sections.mjs';
import { startRadosgw } from '../scripts/radosgw.mjs';

const { values: opt } = parseArgs({
  options: { objects: { type: 'string', default: '64' }, rounds: { type: 'string', default: '3' }, out: { type: 'string', default: 'bench/RESULTS.md' } },
});
const N = Number(opt.objects);
const ROUNDS = Number(opt.rounds);
const SIZE = 4 * 1024 * 1024;
const IN_FLIGHT = 8;
const rgw = await startRadosgw(mkdtempSync(join(tmpdir(), 'cv-bench-rgw-')));
const env = { S3_ENDPOINT: rgw.endpoint, S3_REGION: rgw.region };
const creds = { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };
const blobs = Array.from({ length: N }, () => randomBytes(SIZE));

/** Each client: make its bucket, put(key, buf), get(key) -> Buffer. */
function ours(bucket) {
  const c = new S3Client({ endpoint: env.S3_ENDPOINT, region: env.S3_REGION, bucket, credentials: creds, maxSockets: IN_FLIGHT });
  const into = Array.from({ length: IN_FLIGHT }, () => Buffer.allocUnsafe(SIZE));
  return {
    make: () => c.createBucket(env.S3_REGION, false),
    put: (k, b) => c.put(k, b),
    get: (k, slot) => c.get(k, { into: into[slot] }), // a buffer per request in flight
  };
}

function aws(bucket) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  const c = new AwsClient({
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION,
    forcePathStyle: true,
    credentials: creds,
    requestHandler: new NodeHttpHandler({ httpAgent: agent }),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    make: () => c.send(new CreateBucketCommand({ Bucket: bucket })),
    put: (k, b) => c.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: b, ContentLength: b.length })),
    get: async (k) => Buffer.from(await (await c.send(new GetObjectCommand({ Bucket: bucket, Key: k }))).Body.transformToByteArray()),
  };
}

function minio(bucket) {
  const u = new URL(env.S3_ENDPOINT);
  const c = new Minio.Client({
    endPoint: u.hostname,
    port: Number(u.port),
    useSSL: false,
    accessKey: creds.accessKeyId,
    secretKey: creds.secretAccessKey,
    region: env.S3_REGION,
    pathStyle: true,
    transportAgent: new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT }),
  });
  return {
    make: () => c.makeBucket(bucket, env.S3_REGION),
    put: (k, b) => c.putObject(bucket, k, b, b.length),
    get: async (k) => {
      const chunks = [];
      for await (const piece of await c.getObject(bucket, k)) chunks.push(piece);
      return Buffer.concat(chunks);
    },
  };
}

async function bounded(count, fn) {
  let i = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async (_, slot) => {
      while (i < count) await fn(i++, slot);
    }),
  );
}

async function timed(fn) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { wall, cpu: (cpu.user + cpu.system) / 1e6 };
}

const clients = { coldvault: ours, 'aws-sdk v3': aws, minio };
const results = Object.fromEntries(Object.keys(clients).map((n) => [n, { put: [], get: [] }]));
const load = loadAverage();
const started = new Date().toISOString();
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, make] of Object.entries(clients)) {
      const bucket = `bench-${name.replace(/\W/g, '')}-${round}-${process.pid}`;
      const c = make(bucket);
      await c.make();
      const put = await timed(() => bounded(N, (i) => c.put(`chunks/${i}`, blobs[i])));
      const get = await timed(() =>
        bounded(N, async (i, slot) => {
          const b = await c.get(`chunks/${i}`, slot);
          if (b.length !== SIZE || !b.subarray(0, 64).equals(blobs[i].subarray(0, 64))) throw new Error(`${name}: object ${i} came back wrong`);
        }),
      );
      results[name].put.push(put);
      results[name].get.push(get);
      console.log(
        `round ${round + 1} ${name}: PUT ${(mb() / put.wall).toFixed(0)} MB/s (${put.cpu.toFixed(2)} CPU-s), GET ${(mb() / get.wall).toFixed(0)} MB/s (${get.cpu.toFixed(2)} CPU-s)`,
      );
    }
  }
} finally {
  rgw.stop();
}

function mb() {
  return (N * SIZE) / 1e6;
}

const gib = (N * SIZE) / 2 ** 30;
const row = (name, op) => {
  const xs = results[name][op];
  const wall = median(xs.map((x) => x.wall));
  const cpu = median(xs.map((x) => x.cpu));
  return `| ${name} | ${op.toUpperCase()} | ${(mb() / wall).toFixed(0)} [${xs.map((x) => (mb() / x.wall).toFixed(0)).join(', ')}] | ${(cpu / gib).toFixed(2)} |`;
};
const text = [
  '## Issue 14: which S3 client (bench/s3-clients.mjs)',
  '',
  `\`node bench/s3-clients.mjs --objects ${N} --rounds ${ROUNDS}\`, started ${started}, load average before ${load}. One Ceph radosgw (memstore, beast with tcp_nodelay=1) on 127.0.0.1 over plain HTTP, on the same 2 cores; ${N} objects of 4 MiB (random bytes), ${IN_FLIGHT} requests in flight, keep-alive; rounds interleave the clients. Median MB/s [each round] and this process's CPU seconds per GiB moved.`,
  '',
  '| client | op | MB/s | client CPU-s per GiB |',
  '|---|---|---|---|',
  ...Object.keys(clients).flatMap((n) => [row(n, 'put'), row(n, 'get')]),
  '',
  ...['put', 'get'].map((op) => {
    const by = (f) => Object.keys(clients).sort((a, b) => f(a) - f(b));
    const rate = (n) => -mb() / median(results[n][op].map((x) => x.wall));
    const cpu = (n) => median(results[n][op].map((x) => x.cpu));
    return `${op.toUpperCase()}: fastest ${by(rate)[0]}, least client CPU ${by(cpu)[0]} (${(cpu(by(cpu)[1]) / cpu(by(cpu)[0])).toFixed(1)}x less than the next, ${by(cpu)[1]}).`;
  }),
  '',
];
replaceBlock(resolve(opt.out), 's3-clients', text.join('\n'));
console.log(text.join('\n'));
