/** Messages between the pool and its chunk workers. */
export type WorkerRequest =
  | { id: number; op: 'digest'; buf: ArrayBuffer; length: number }
  | { id: number; op: 'encode'; buf: ArrayBuffer; length: number; level: number }
  | { id: number; op: 'decode'; blob: ArrayBuffer; hex: string; length: number };

export type WorkerReply =
  | { id: number; ok: true; digest?: string; blob?: ArrayBuffer; plain?: ArrayBuffer; buf?: ArrayBuffer }
  | { id: number; ok: false; code: string; message: string; buf?: ArrayBuffer };
