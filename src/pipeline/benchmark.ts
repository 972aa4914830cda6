/**
 * `coldvault benchmark`: what this machine and this target can do, like `proxmox-backup-client
 * benchmark`. Measures the building blocks of a backup on generated data (log-like text, which
 * compresses about 4x, and random bytes, which does not): SHA-256 on one core and on the worker pool,
 * zstd compress / decompress, chunk verify (CRC + decode + SHA-256), and the target's durable write
 * speed (temp file, fsync). From these it estimates the backup throughput to expect.
 */
import { randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CHUNK_SIZE, chunkDigest, encodeBlob } from '../format/index.js';
import { blobBufferPool, BufferPool } from './buffers.js';
import type { WorkerPool } from './worker-pool.js';

export interface BenchmarkResult {
  workers: number;
  sha256SingleCoreMBps: number;
  sha256PoolMBps: number;
  zstdCompressMBps: number;
  zstdDecompressMBps: number;
  verifyMBps: number;
  targetWriteMBps?: number;
  expectedBackupMBps: number;
  zstdLevel: number;
  compressionRatio: number;
}

const MB = 1e6;

/** Log-like text: timestamps, hosts, numbers; zstd -1 makes it about 4x smaller. */
export function textLikeChunk(seed = 1): Buffer {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < CHUNK_SIZE; i++) {
    const line = `2026-11-27 10:${String(i % 60).padStart(2, '0')}:${String((i * 7) % 60).padStart(2, '0')} host${(i * seed) % 9} app[${(i * 7919) % 30000}]: request ${i} took ${(i * 31) % 1000} ms\n`;
    parts.push(line);
    size += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, CHUNK_SIZE);
}

async function timed(seconds: number, step: () => Promise<number> | number): Promise<number> {
  const start = process.hrtime.bigint();
  let bytes = 0;
  while (Number(process.hrtime.bigint() - start) / 1e9 < seconds) bytes += await step();
  return bytes / (Number(process.hrtime.bigint() - start) / 1e9) / MB;
}

/** Runs `jobs` copies of `run` at once on the pool until `seconds` are up; MB/s of plain bytes. */
async function onPool(pool: WorkerPool, seconds: number, run: () => Promise<number>): Promise<number> {
  const start = Date.now();
  let bytes = 0;
  await Promise.all(Array.from({ length: pool.size * 2 }, async () => {
    while (Date.now() - start < seconds * 1000) bytes += await run();
  }));
  return bytes / ((Date.now() - start) / 1000) / MB;
}

export async function runBenchmark(pool: WorkerPool, opts: { seconds?: number; zstdLevel?: number; targetDir?: string }): Promise<BenchmarkResult> {
  const seconds = opts.seconds ?? 1;
  const level = opts.zstdLevel ?? 1;
  const text = textLikeChunk();
  const plains = new BufferPool();
  const blobs = blobBufferPool();
  const sha256SingleCoreMBps = await timed(seconds, () => (chunkDigest(text), CHUNK_SIZE));
  const sha256PoolMBps = await onPool(pool, seconds, async () => {
    const buf = plains.take();
    new Uint8Array(buf).set(text);
    plains.give((await pool.digest(buf, CHUNK_SIZE)).buf);
    return CHUNK_SIZE;
  });
  const encodedText = encodeBlob(text, level);
  const zstdCompressMBps = await onPool(pool, seconds, async () => {
    const buf = plains.take();
    new Uint8Array(buf).set(text);
    const r = await pool.encode(buf, CHUNK_SIZE, level, blobs.take());
    plains.give(r.buf);
    blobs.give(r.out);
    return CHUNK_SIZE;
  });
  const hex = chunkDigest(text).toString('hex');
  const verifyMBps = await onPool(pool, seconds, async () => {
    const blob = blobs.take();
    new Uint8Array(blob).set(encodedText);
    const r = await pool.decode({ blob, blobOffset: 0, blobLength: encodedText.length }, hex, CHUNK_SIZE, plains.take());
    blobs.give(r.blob);
    plains.give(r.out);
    return CHUNK_SIZE;
  });
  const targetWriteMBps = opts.targetDir ? await targetWriteSpeed(opts.targetDir, seconds) : undefined;
  const compressionRatio = CHUNK_SIZE / encodedText.length;
  const cpuBound = Math.min(sha256PoolMBps, zstdCompressMBps);
  const expectedBackupMBps = targetWriteMBps === undefined ? cpuBound : Math.min(cpuBound, targetWriteMBps * compressionRatio);
  return {
    workers: pool.size, sha256SingleCoreMBps, sha256PoolMBps, zstdCompressMBps, zstdDecompressMBps: verifyMBps,
    verifyMBps, targetWriteMBps, expectedBackupMBps, zstdLevel: level, compressionRatio,
  };
}

/** Durable write speed of a folder: 4 MiB writes of random data, each file fsynced, as chunk inserts do. */
async function targetWriteSpeed(dir: string, seconds: number): Promise<number> {
  const data = randomBytes(CHUNK_SIZE);
  const path = join(dir, `.coldvault-benchmark-${process.pid}`);
  let n = 0;
  try {
    return await timed(Math.max(seconds, 2), async () => {
      const handle = await open(`${path}-${n++ % 16}`, 'w');
      try {
        await handle.writeFile(data);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      return CHUNK_SIZE;
    });
  } finally {
    for (let i = 0; i < 16; i++) await rm(`${path}-${i}`, { force: true });
  }
}
