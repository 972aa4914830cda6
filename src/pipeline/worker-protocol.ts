/**
 * Messages between the pool and its chunk workers. Every buffer travels by transfer and comes back
 * in the reply, so the pipeline cycles a fixed set of buffers instead of allocating per chunk.
 * `key` (an encrypted version's master key, by the number the pool gave it) makes digest a keyed
 * one (HMAC-SHA-256), encode seal the blob, and decode open one (format/encrypted-blob.ts); `sealed`
 * decodes nothing: only what an encrypted blob shows without its key is checked (magic, size, CRC).
 * `checkRaw` checks a raw blob where it lies (its payload is the plain chunk: chunk-reader.ts).
 * Keys reach a worker once, by a `key` message that needs no reply (at spawn: in its workerData).
 */
export type WorkerRequest =
  | { id: number; op: 'digest'; buf: ArrayBuffer; length: number; key?: number }
  | { id: number; op: 'encode'; buf: ArrayBuffer; length: number; level: number; out: ArrayBuffer; outOffset: number; key?: number; hex?: string }
  | {
      id: number;
      op: 'decode';
      blob: ArrayBuffer;
      blobOffset: number;
      blobLength: number;
      hex: string;
      length: number;
      out: ArrayBuffer;
      outOffset: number;
      key?: number;
      sealed?: boolean;
    }
  | { id: number; op: 'checkReceived'; blob: ArrayBuffer | SharedArrayBuffer; blobOffset: number; blobLength: number; hex: string }
  | { id: number; op: 'checkRaw'; blob: ArrayBuffer; blobOffset: number; blobLength: number; hex: string; length: number };

/** Keys for the worker: posted without a reply expected. */
export type WorkerKeyMessage = { op: 'key'; key: number; master: Uint8Array } | { op: 'forget'; key: number };

export interface WorkerReply {
  id: number;
  ok: boolean;
  /** the buffers of the request, handed back */
  buffers: ArrayBuffer[];
  digest?: string;
  blobLength?: number;
  code?: string;
  message?: string;
}

export function requestBuffers(req: WorkerRequest): ArrayBuffer[] {
  switch (req.op) {
    case 'digest':
      return [req.buf];
    case 'encode':
      return [req.buf, req.out];
    case 'decode':
      return [req.blob, req.out];
    case 'checkReceived':
      return req.blob instanceof ArrayBuffer ? [req.blob] : []; // a SharedArrayBuffer is shared, not moved
    case 'checkRaw':
      return [req.blob];
  }
}
