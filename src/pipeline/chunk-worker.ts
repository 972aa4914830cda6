/**
 * The chunk worker (runs in a worker_thread): the CPU work of the pipeline, off the main thread.
 * zstd-napi and SHA-256 are synchronous, so each worker does one job at a time; the pool sizes the
 * number of workers to the cores. Buffers travel by transfer (no copy) and come back with the answer.
 */
import { parentPort } from 'node:worker_threads';
import { chunkDigest, decodeBlob, digestHex, encodeBlob } from '../format/index.js';
import type { WorkerReply, WorkerRequest } from './worker-protocol.js';

/** The bytes as a transferable ArrayBuffer of their own (no copy when they already own one). */
function ownArrayBuffer(bytes: Buffer): ArrayBuffer {
  const ab = bytes.buffer as ArrayBuffer;
  if (bytes.byteOffset === 0 && bytes.byteLength === ab.byteLength) return ab;
  return ab.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

function handle(req: WorkerRequest): { reply: WorkerReply; transfer: ArrayBuffer[] } {
  switch (req.op) {
    case 'digest': {
      const plain = new Uint8Array(req.buf, 0, req.length);
      const digest = chunkDigest(plain);
      return { reply: { id: req.id, ok: true, digest: digest.toString('hex'), buf: req.buf }, transfer: [req.buf] };
    }
    case 'encode': {
      const blob = encodeBlob(new Uint8Array(req.buf, 0, req.length), req.level);
      const out = ownArrayBuffer(blob);
      return { reply: { id: req.id, ok: true, blob: out, buf: req.buf }, transfer: [req.buf, out] };
    }
    case 'decode': {
      const what = `chunk ${req.hex}`;
      const plain = decodeBlob(new Uint8Array(req.blob), what, req.length);
      if (digestHex(chunkDigest(plain)) !== req.hex) {
        throw Object.assign(new Error(`${what} is corrupt: SHA-256 does not match its name`), { code: 'CHUNK_CORRUPT' });
      }
      const out = ownArrayBuffer(plain);
      return { reply: { id: req.id, ok: true, plain: out }, transfer: [out] };
    }
  }
}

parentPort?.on('message', (req: WorkerRequest) => {
  try {
    const { reply, transfer } = handle(req);
    parentPort?.postMessage(reply, transfer);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const back = req.op === 'decode' ? [] : [req.buf];
    const reply: WorkerReply = { id: req.id, ok: false, code: e.code ?? 'IO', message: e.message ?? String(err), buf: req.op === 'decode' ? undefined : req.buf };
    parentPort?.postMessage(reply, back);
  }
});
