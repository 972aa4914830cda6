/**
 * The chunk worker (runs in a worker_thread): the CPU work of the pipeline, off the main thread.
 * zstd-napi, SHA-256 and AES-GCM are synchronous, so each worker does one job at a time; the pool
 * sizes the number of workers to the cores. Buffers arrive by transfer and go back with the answer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { checkReceivedBlob } from '../datastore/index.js';
import {
  CHUNK_SIZE,
  checkEncryptedBlob,
  chunkDigest,
  chunkKeys,
  decodeBlobInto,
  decodeEncryptedBlobInto,
  digestHex,
  encodeBlobInto,
  encodeEncryptedBlobInto,
  encryptedChunkId,
  rawBlobPayload,
  type ChunkKeys,
} from '../format/index.js';
import { requestBuffers, type WorkerKeyMessage, type WorkerReply, type WorkerRequest } from './worker-protocol.js';

/** the keys this worker was given, by the pool's number */
const keys = new Map<number, ChunkKeys>();
for (const [n, master] of (workerData as { keys?: Array<[number, Uint8Array]> } | undefined)?.keys ?? []) keys.set(n, chunkKeys(master));

function keyOf(n: number): ChunkKeys {
  const k = keys.get(n);
  if (!k) throw Object.assign(new Error(`chunk worker has no key ${n}`), { code: 'IO' });
  return k;
}

function handle(req: WorkerRequest): Omit<WorkerReply, 'id' | 'ok' | 'buffers'> {
  switch (req.op) {
    case 'digest':
      return { digest: digestOf(new Uint8Array(req.buf, 0, req.length), req.key) };
    case 'encode':
      return { blobLength: encode(req) };
    case 'decode':
      decode(req);
      return {};
    case 'checkReceived':
      return { blobLength: checkReceivedBlob(req.hex, new Uint8Array(req.blob, req.blobOffset, req.blobLength), scratch()) };
    case 'checkRaw':
      checkRaw(req);
      return {};
  }
}

/** The chunk's name: SHA-256, or HMAC-SHA-256 under key `key`. */
function digestOf(plain: Uint8Array, key: number | undefined): string {
  return digestHex(key === undefined ? chunkDigest(plain) : encryptedChunkId(plain, keyOf(key)));
}

function encode(req: Extract<WorkerRequest, { op: 'encode' }>): number {
  const plain = new Uint8Array(req.buf, 0, req.length);
  const out = new Uint8Array(req.out, req.outOffset);
  if (req.key === undefined) return encodeBlobInto(plain, req.level, out);
  return encodeEncryptedBlobInto(plain, Buffer.from(req.hex ?? '', 'hex'), keyOf(req.key), req.level, out);
}

function decode(req: Extract<WorkerRequest, { op: 'decode' }>): void {
  const what = `chunk ${req.hex}`;
  const blob = new Uint8Array(req.blob, req.blobOffset, req.blobLength);
  if (req.sealed) return checkEncryptedBlob(blob, what);
  const out = new Uint8Array(req.out, req.outOffset);
  const length =
    req.key === undefined
      ? decodeBlobInto(blob, what, out, req.length)
      : decodeEncryptedBlobInto(blob, Buffer.from(req.hex, 'hex'), keyOf(req.key), what, out, req.length);
  if (digestOf(out.subarray(0, length), req.key) !== req.hex) throw digestMismatch(what, req.key);
}

/** A raw blob checked where it lies: magic, CRC, length, and the SHA-256 of its payload against its name. */
function checkRaw(req: Extract<WorkerRequest, { op: 'checkRaw' }>): void {
  const what = `chunk ${req.hex}`;
  const payload = rawBlobPayload(new Uint8Array(req.blob, req.blobOffset, req.blobLength), what, req.length);
  if (digestOf(payload, undefined) !== req.hex) throw digestMismatch(what, undefined);
}

function digestMismatch(what: string, key: number | undefined): Error {
  const name = key === undefined ? 'SHA-256' : 'keyed digest (HMAC-SHA-256)';
  return Object.assign(new Error(`${what} is corrupt: its ${name} does not match its name`), { code: 'CHUNK_CORRUPT' });
}

/** this worker's buffer for the plain bytes of received zstd blobs (made at the first one) */
let receivedScratch: Buffer | undefined;
const scratch = (): Buffer => (receivedScratch ??= Buffer.allocUnsafeSlow(CHUNK_SIZE));

parentPort?.on('message', (msg: WorkerRequest | WorkerKeyMessage) => {
  if (msg.op === 'key') return void keys.set(msg.key, chunkKeys(msg.master));
  if (msg.op === 'forget') return void keys.delete(msg.key);
  const req = msg;
  const buffers = requestBuffers(req);
  let reply: WorkerReply;
  try {
    reply = { id: req.id, ok: true, buffers, ...handle(req) };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    reply = { id: req.id, ok: false, buffers, code: e.code ?? 'IO', message: e.message ?? String(err) };
  }
  parentPort?.postMessage(reply, buffers);
});
