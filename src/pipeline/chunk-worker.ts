/**
 * The chunk worker (runs in a worker_thread): the CPU work of the pipeline, off the main thread.
 * zstd-napi and SHA-256 are synchronous, so each worker does one job at a time; the pool sizes the
 * number of workers to the cores. Buffers arrive by transfer and go back with the answer.
 */
import { parentPort } from 'node:worker_threads';
import { checkReceivedBlob } from '../datastore/index.js';
import { CHUNK_SIZE, chunkDigest, decodeBlobInto, digestHex, encodeBlobInto } from '../format/index.js';
import { requestBuffers, type WorkerReply, type WorkerRequest } from './worker-protocol.js';

function handle(req: WorkerRequest): Omit<WorkerReply, 'id' | 'ok' | 'buffers'> {
  switch (req.op) {
    case 'digest':
      return { digest: digestHex(chunkDigest(new Uint8Array(req.buf, 0, req.length))) };
    case 'encode':
      return { blobLength: encodeBlobInto(new Uint8Array(req.buf, 0, req.length), req.level, new Uint8Array(req.out, req.outOffset)) };
    case 'decode': {
      const what = `chunk ${req.hex}`;
      const out = new Uint8Array(req.out, req.outOffset);
      const plain = out.subarray(0, decodeBlobInto(new Uint8Array(req.blob, req.blobOffset, req.blobLength), what, out, req.length));
      if (digestHex(chunkDigest(plain)) !== req.hex) {
        throw Object.assign(new Error(`${what} is corrupt: SHA-256 does not match its name`), { code: 'CHUNK_CORRUPT' });
      }
      return {};
    }
    case 'checkReceived':
      return { blobLength: checkReceivedBlob(req.hex, new Uint8Array(req.blob, req.blobOffset, req.blobLength), scratch()) };
  }
}

/** this worker's buffer for the plain bytes of received zstd blobs (made at the first one) */
let receivedScratch: Buffer | undefined;
const scratch = (): Buffer => (receivedScratch ??= Buffer.allocUnsafeSlow(CHUNK_SIZE));

parentPort?.on('message', (req: WorkerRequest) => {
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
