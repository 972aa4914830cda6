/**
 * `coldvault benchmark`: what this machine and this target can do, like `proxmox-backup-client
 * benchmark`. Measures the building blocks of a backup on generated data (log-like text, which
 * compresses about 4x, and random bytes, which does not): SHA-256 on one core and on the worker pool,
 * zstd compress / decompress, chunk verify (CRC + decode + SHA-256), AES-256-GCM on one core and the
 * encrypted encode (zstd + seal) on the worker pool, and the target's durable write speed (as chunk
 * inserts write: O_DIRECT where possible, fdatasync). From these it estimates the backup throughput to
 * expect, for data that compresses like the sample and for data that does not, and encrypted.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { alignedOffset, DIRECT_ALIGN, loadNative } from '../core/index.js';
import { writeFileDirect, writeFileDurable } from '../datastore/index.js';
import { aesGcmSealInto, BLOB_MAGIC_ENCRYPTED, CHUNK_SIZE, chunkDigest, encodeBlob, encryptedChunkId, newMasterKey, versionKey } from '../format/index.js';
import { blobBufferPool, BufferPool } from './buffers.js';
import type { WorkerPool } from './worker-pool.js';

export interface BenchmarkResult {
  workers: number;
  sha256SingleCoreMBps: number;
  sha256PoolMBps: number;
  zstdCompressMBps: number;
  zstdDecompressMBps: number;
  verifyMBps: number;
  /** AES-256-GCM of 4 MiB chunks on one core, through what the encrypted blob codec seals with (aes256GcmWith) */
  aes256GcmSingleCoreMBps: number;
  /** 'native': the addon's in-place seal (native/seal.c, OpenSSL of the node binary); 'node:crypto': the fallback in 128 KiB slices */
  aes256GcmWith: 'native' | 'node:crypto';
  /** encrypted encode on the worker pool: zstd, then AES-256-GCM, CRC (what an encrypted backup does after naming a chunk) */
  encryptedEncodeMBps: number;
  targetWriteMBps?: number;
  /** non-zero data that compresses like the sample: SHA-256 and zstd share the workers; the target gets the compressed bytes */
  expectedBackupMBps: number;
  /** non-zero data that does not compress (media, encrypted disks): SHA-256-bound, the target gets every byte */
  expectedIncompressibleMBps: number;
  /** as expectedBackupMBps, encrypted (--encrypt): HMAC-SHA-256 names cost what SHA-256 does, the encode also seals */
  expectedEncryptedBackupMBps: number;
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
  const bytes = await sumConcurrently(
    1,
    () => Number(process.hrtime.bigint() - start) / 1e9 < seconds,
    async () => step(),
  );
  return bytes / (Number(process.hrtime.bigint() - start) / 1e9) / MB;
}

/**
 * Runs `lanes` loops of `run` at once while `more()` says so; the sum of what the runs returned.
 * (Each result is added after its await: `total += await run()` would read `total` before the await
 * and lose the other lanes' additions, which made the pool figures 4x too low.)
 */
export async function sumConcurrently(lanes: number, more: () => boolean, run: () => Promise<number>): Promise<number> {
  let total = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (more()) {
        const n = await run();
        total += n;
      }
    }),
  );
  return total;
}

/** Runs two jobs per worker at once on the pool until `seconds` are up; MB/s of plain bytes. */
async function onPool(pool: WorkerPool, seconds: number, run: () => Promise<number>): Promise<number> {
  const start = Date.now();
  const bytes = await sumConcurrently(pool.size * 2, () => Date.now() - start < seconds * 1000, run);
  return bytes / ((Date.now() - start) / 1000) / MB;
}

/** One AES-256-GCM seal of a chunk as encrypted blobs do it (format/encrypted-blob.ts: the addon in place, else node:crypto). */
function sealOnce(key: Uint8Array, aad: Uint8Array, plain: Uint8Array, out: Uint8Array, tag: Uint8Array): void {
  aesGcmSealInto(key, randomBytes(12), aad, plain, out, tag);
}

/** Encrypted encode on the pool under a throwaway key the workers forget afterwards; MB/s of plain bytes. */
async function encryptedEncodeOnPool(pool: WorkerPool, seconds: number, level: number, text: Buffer, plains: BufferPool, blobs: BufferPool): Promise<number> {
  const key = versionKey(newMasterKey());
  const codec = pool.withKey(key);
  const hex = encryptedChunkId(text, key.chunks).toString('hex');
  try {
    return await onPool(pool, seconds, async () => {
      const buf = plains.take();
      new Uint8Array(buf).set(text);
      const r = await codec.encode(buf, CHUNK_SIZE, level, blobs.take(), 0, hex);
      plains.give(r.buf);
      blobs.give(r.out);
      return CHUNK_SIZE;
    });
  } finally {
    codec.release();
  }
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
  const sealKey = randomBytes(32);
  const aad = Buffer.concat([BLOB_MAGIC_ENCRYPTED, randomBytes(32)]);
  const sealed = Buffer.allocUnsafe(CHUNK_SIZE);
  const tag = Buffer.alloc(16);
  const aes256GcmSingleCoreMBps = await timed(seconds, () => (sealOnce(sealKey, aad, text, sealed, tag), CHUNK_SIZE));
  const encryptedEncodeMBps = await encryptedEncodeOnPool(pool, seconds, level, text, plains, blobs);
  const targetWriteMBps = opts.targetDir ? await targetWriteSpeed(opts.targetDir, seconds) : undefined;
  const compressionRatio = CHUNK_SIZE / encodedText.length;
  const cpuBound = 1 / (1 / sha256PoolMBps + 1 / zstdCompressMBps); // each chunk is hashed, then compressed, on the same workers
  const expectedBackupMBps = targetWriteMBps === undefined ? cpuBound : Math.min(cpuBound, targetWriteMBps * compressionRatio);
  const expectedIncompressibleMBps = targetWriteMBps === undefined ? sha256PoolMBps : Math.min(sha256PoolMBps, targetWriteMBps);
  const encryptedCpuBound = 1 / (1 / sha256PoolMBps + 1 / encryptedEncodeMBps); // HMAC-SHA-256 names, then zstd + seal, on the same workers
  const expectedEncryptedBackupMBps = targetWriteMBps === undefined ? encryptedCpuBound : Math.min(encryptedCpuBound, targetWriteMBps * compressionRatio);
  return {
    workers: pool.size,
    sha256SingleCoreMBps,
    sha256PoolMBps,
    zstdCompressMBps,
    zstdDecompressMBps: verifyMBps,
    verifyMBps,
    aes256GcmSingleCoreMBps,
    aes256GcmWith: loadNative()?.sealInto ? 'native' : 'node:crypto',
    encryptedEncodeMBps,
    targetWriteMBps,
    expectedBackupMBps,
    expectedIncompressibleMBps,
    expectedEncryptedBackupMBps,
    zstdLevel: level,
    compressionRatio,
  };
}

/**
 * Durable write speed of a folder, written the way chunk inserts write: 4 MiB files of random data,
 * O_DIRECT where the filesystem takes it (else through the page cache), each fdatasync'ed.
 */
async function targetWriteSpeed(dir: string, seconds: number): Promise<number> {
  const buf = new ArrayBuffer(CHUNK_SIZE + 2 * DIRECT_ALIGN);
  const data = new Uint8Array(buf, alignedOffset(buf), CHUNK_SIZE);
  data.set(randomBytes(CHUNK_SIZE));
  const path = join(dir, `.coldvault-benchmark-${process.pid}`);
  let n = 0;
  try {
    return await timed(Math.max(seconds, 2), async () => {
      const file = `${path}-${n++ % 16}`;
      await rm(file, { force: true });
      if (!(await writeFileDirect(file, data, `writing '${file}'`))) await writeFileDurable(file, data, { syncDir: false, dataOnly: true });
      return CHUNK_SIZE;
    });
  } finally {
    for (let i = 0; i < 16; i++) await rm(`${path}-${i}`, { force: true });
  }
}
