/**
 * Messages between the pool and its chunk workers. Every buffer travels by transfer and comes back
 * in the reply, so the pipeline cycles a fixed set of buffers instead of allocating per chunk.
 */
export type WorkerRequest =
  | { id: number; op: 'digest'; buf: ArrayBuffer; length: number }
  | { id: number; op: 'encode'; buf: ArrayBuffer; length: number; level: number; out: ArrayBuffer; outOffset: number }
  | { id: number; op: 'decode'; blob: ArrayBuffer; blobOffset: number; blobLength: number; hex: string; length: number; out: ArrayBuffer; outOffset: number }
  | { id: number; op: 'checkReceived'; blob: ArrayBuffer | SharedArrayBuffer; blobOffset: number; blobLength: number; hex: string };

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
  }
}
