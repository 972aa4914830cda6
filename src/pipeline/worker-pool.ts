/**
 * A fixed pool of chunk workers (worker_threads), one per core by default. Jobs queue in FIFO order;
 * callers bound how many they submit (the pipeline's in-flight window), so the queue stays short.
 * `close()` terminates the workers. One pool serves every flow of a process; an encrypted version's
 * flow uses it through `withKey` (a ChunkCodec whose digest, encode and decode use that key) and
 * `sealedOnly` (verify without the key); the plain pool is the ChunkCodec of unencrypted versions.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ColdvaultError, type ErrorCode } from '../core/index.js';
import type { VersionKey } from '../format/index.js';
import type { WorkerKeyMessage, WorkerReply, WorkerRequest } from './worker-protocol.js';

type Pending = { resolve: (r: WorkerReply) => void; reject: (e: Error) => void };
type Job = { req: WorkerRequest; transfer: ArrayBuffer[]; pending: Pending };

const WORKER_URL = new URL('./chunk-worker.js', import.meta.url);

export class WorkerPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Job>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  /** master keys the workers hold, by number (a respawned worker gets them in its workerData) */
  private readonly keys = new Map<number, Uint8Array>();
  private nextKey = 1;

  constructor(readonly size = Math.max(1, availableParallelism())) {
    for (let i = 0; i < size; i++) this.idle.push(this.spawn());
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_URL, { workerData: { keys: [...this.keys] } });
    worker.on('message', (reply: WorkerReply) => this.finish(worker, reply));
    worker.on('error', (err) => this.crash(worker, err));
    return worker;
  }

  private finish(worker: Worker, reply: WorkerReply): void {
    const job = this.busy.get(worker);
    this.busy.delete(worker);
    this.idle.push(worker);
    job?.pending.resolve(reply);
    this.pump();
  }

  private crash(worker: Worker, err: Error): void {
    const job = this.busy.get(worker);
    this.busy.delete(worker);
    job?.pending.reject(new ColdvaultError('IO', `chunk worker failed: ${err.message}`, { cause: err }));
    if (!this.closed) this.idle.push(this.spawn());
    this.pump();
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop() as Worker;
      const job = this.queue.shift() as Job;
      this.busy.set(worker, job);
      worker.postMessage(job.req, job.transfer);
    }
  }

  private run(req: WorkerRequest, transfer: ArrayBuffer[]): Promise<WorkerReply> {
    if (this.closed) return Promise.reject(new ColdvaultError('ABORTED', 'worker pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ req, transfer, pending: { resolve, reject } });
      this.pump();
    });
  }

  /**
   * The pool as a codec of versions encrypted with `key`; `release()` makes the workers forget the
   * key again. Messages to a worker arrive in order, so the key is there before any request using it.
   */
  withKey(key: VersionKey): KeyedCodec {
    const n = this.nextKey++;
    this.keys.set(n, key.master);
    this.tell({ op: 'key', key: n, master: key.master });
    return new KeyedCodec(this, n, key.fingerprint, () => {
      this.keys.delete(n);
      this.tell({ op: 'forget', key: n });
    });
  }

  /** The pool as a codec that only checks what encrypted blobs show without their key (verify without --keyfile). */
  sealedOnly(): ChunkCodec {
    return new SealedOnlyCodec(this);
  }

  private tell(msg: WorkerKeyMessage): void {
    for (const w of [...this.idle, ...this.busy.keys()]) w.postMessage(msg);
  }

  /** SHA-256 of buf[0, length) (HMAC-SHA-256 under key number `key`); the buffer is transferred and handed back. */
  async digest(buf: ArrayBuffer, length: number, key?: number): Promise<{ hex: string; buf: ArrayBuffer }> {
    const r = await this.run({ id: this.nextId++, op: 'digest', buf, length, key }, [buf]);
    const [back] = r.buffers as [ArrayBuffer];
    return { hex: ok(r).digest as string, buf: back };
  }

  /**
   * Encodes buf[0, length) at zstd `level` (0 = raw) into `out` from byte `outOffset` on (the backup
   * aligns it for an O_DIRECT write); both buffers come back. With key number `key`: sealed, as chunk `hex`.
   */
  async encode(
    buf: ArrayBuffer,
    length: number,
    level: number,
    out: ArrayBuffer,
    outOffset = 0,
    hex?: string,
    key?: number,
  ): Promise<{ blobLength: number; buf: ArrayBuffer; out: ArrayBuffer }> {
    const r = await this.run({ id: this.nextId++, op: 'encode', buf, length, level, out, outOffset, key, hex }, [buf, out]);
    const [backBuf, backOut] = r.buffers as [ArrayBuffer, ArrayBuffer];
    ok(r);
    return { blobLength: r.blobLength as number, buf: backBuf, out: backOut };
  }

  /**
   * Decodes the blob at blob[blobOffset, +blobLength) into `out` from byte `outOffset` on (the chunk
   * reader aligns both for O_DIRECT) and checks CRC, length and SHA-256 against `hex`; CHUNK_CORRUPT
   * otherwise. Both buffers come back (on failure they are dropped).
   */
  async decode(
    src: { blob: ArrayBuffer; blobOffset: number; blobLength: number },
    hex: string,
    length: number,
    out: ArrayBuffer,
    outOffset = 0,
    how: { key?: number; sealed?: boolean } = {},
  ): Promise<{ blob: ArrayBuffer; out: ArrayBuffer }> {
    const { blob, blobOffset, blobLength } = src;
    const r = await this.run({ id: this.nextId++, op: 'decode', blob, blobOffset, blobLength, hex, length, out, outOffset, ...how }, [blob, out]);
    const [backBlob, backOut] = r.buffers as [ArrayBuffer, ArrayBuffer];
    ok(r);
    return { blob: backBlob, out: backOut };
  }

  /**
   * Checks the raw blob at blob[blobOffset, +blobLength) where it lies: magic, CRC, `length` bytes, and
   * the SHA-256 of its payload against `hex`; CHUNK_CORRUPT otherwise. The payload is then the plain
   * chunk, with no copy (a reader that lands blobs where their chunk belongs: chunk-reader.ts). The
   * buffer comes back (on failure it is dropped). Unencrypted chunks only: the pool's own codec.
   */
  async checkRawInPlace(src: { blob: ArrayBuffer; blobOffset: number; blobLength: number }, hex: string, length: number): Promise<ArrayBuffer> {
    const { blob, blobOffset, blobLength } = src;
    const r = await this.run({ id: this.nextId++, op: 'checkRaw', blob, blobOffset, blobLength, hex, length }, [blob]);
    const [back] = r.buffers as [ArrayBuffer];
    ok(r);
    return back;
  }

  /**
   * Checks a blob another node sent as chunk `hex` (datastore's checkReceivedBlob: CRC, decode, at
   * most one chunk, SHA-256 is the name); CHUNK_FORGED otherwise. Resolves to the blob checked:
   * - over a SharedArrayBuffer: the worker reads it where it is, nothing moves (the server's spare
   *   body buffers: no new buffer object per chunk on this thread, see server/chunk-buffers.ts);
   * - else the ArrayBuffer is transferred (whole when the caller says it holds nothing else: `owned`;
   *   else a copy of the blob) and comes back as a view of the same bytes; on failure it is dropped.
   */
  async checkReceived(blob: Uint8Array, hex: string, owned = false): Promise<Uint8Array> {
    if (blob.buffer instanceof SharedArrayBuffer) {
      ok(await this.run({ id: this.nextId++, op: 'checkReceived', blob: blob.buffer, blobOffset: blob.byteOffset, blobLength: blob.byteLength, hex }, []));
      return blob;
    }
    const own =
      owned && blob.buffer instanceof ArrayBuffer ? { buffer: blob.buffer, byteOffset: blob.byteOffset, byteLength: blob.byteLength } : ownBuffer(blob);
    const r = await this.run({ id: this.nextId++, op: 'checkReceived', blob: own.buffer, blobOffset: own.byteOffset, blobLength: own.byteLength, hex }, [
      own.buffer,
    ]);
    const [back] = r.buffers as [ArrayBuffer];
    ok(r);
    return new Uint8Array(back, own.byteOffset, own.byteLength);
  }

  async close(): Promise<void> {
    this.closed = true;
    const workers = [...this.idle, ...this.busy.keys()];
    this.idle.length = 0;
    await Promise.allSettled(workers.map((w) => w.terminate()));
  }
}

/**
 * What the backup, restore and verify flows need of the pool for one kind of version: the names,
 * blobs and checks of unencrypted chunks (the WorkerPool itself), of chunks encrypted with one key
 * (KeyedCodec), or only the keyless checks of encrypted ones (SealedOnlyCodec).
 */
export interface ChunkCodec {
  readonly size: number;
  /** the key's fingerprint, for a keyed codec */
  readonly fingerprint?: string;
  digest(buf: ArrayBuffer, length: number): Promise<{ hex: string; buf: ArrayBuffer }>;
  /** encodes the chunk named `hex` (an encrypted blob authenticates its name) */
  encode(
    buf: ArrayBuffer,
    length: number,
    level: number,
    out: ArrayBuffer,
    outOffset: number,
    hex: string,
  ): Promise<{ blobLength: number; buf: ArrayBuffer; out: ArrayBuffer }>;
  decode(
    src: { blob: ArrayBuffer; blobOffset: number; blobLength: number },
    hex: string,
    length: number,
    out: ArrayBuffer,
    outOffset?: number,
  ): Promise<{ blob: ArrayBuffer; out: ArrayBuffer }>;
  /** the unencrypted codec only (WorkerPool.checkRawInPlace): a raw blob checked where it lies */
  checkRawInPlace?(src: { blob: ArrayBuffer; blobOffset: number; blobLength: number }, hex: string, length: number): Promise<ArrayBuffer>;
}

/** The pool's codec of versions encrypted with one key. */
export class KeyedCodec implements ChunkCodec {
  constructor(
    private readonly pool: WorkerPool,
    private readonly key: number,
    readonly fingerprint: string,
    readonly release: () => void,
  ) {}

  get size(): number {
    return this.pool.size;
  }

  digest(buf: ArrayBuffer, length: number): Promise<{ hex: string; buf: ArrayBuffer }> {
    return this.pool.digest(buf, length, this.key);
  }

  encode(buf: ArrayBuffer, length: number, level: number, out: ArrayBuffer, outOffset: number, hex: string) {
    return this.pool.encode(buf, length, level, out, outOffset, hex, this.key);
  }

  decode(src: { blob: ArrayBuffer; blobOffset: number; blobLength: number }, hex: string, length: number, out: ArrayBuffer, outOffset = 0) {
    return this.pool.decode(src, hex, length, out, outOffset, { key: this.key });
  }
}

/** Encrypted chunks checked without their key: magic, size and CRC; nothing is decoded (verify without --keyfile). */
class SealedOnlyCodec implements ChunkCodec {
  constructor(private readonly pool: WorkerPool) {}

  get size(): number {
    return this.pool.size;
  }

  digest(): Promise<{ hex: string; buf: ArrayBuffer }> {
    return Promise.reject(new ColdvaultError('KEY_REQUIRED', 'chunks of an encrypted version cannot be named without its key'));
  }

  encode(): Promise<{ blobLength: number; buf: ArrayBuffer; out: ArrayBuffer }> {
    return Promise.reject(new ColdvaultError('KEY_REQUIRED', 'chunks of an encrypted version cannot be written without its key'));
  }

  decode(src: { blob: ArrayBuffer; blobOffset: number; blobLength: number }, hex: string, length: number, out: ArrayBuffer, outOffset = 0) {
    return this.pool.decode(src, hex, length, out, outOffset, { sealed: true });
  }
}

/** `view` itself when it is alone on its ArrayBuffer (transferable), else a copy that is (a pooled small Buffer shares one). */
function ownBuffer(view: Uint8Array): { buffer: ArrayBuffer; byteOffset: number; byteLength: number } {
  const whole = view.buffer instanceof ArrayBuffer && view.byteOffset === 0 && view.byteLength === view.buffer.byteLength;
  if (whole) return { buffer: view.buffer, byteOffset: 0, byteLength: view.byteLength };
  const copy = new Uint8Array(view.byteLength);
  copy.set(view);
  return { buffer: copy.buffer, byteOffset: 0, byteLength: copy.byteLength };
}

function failure(reply: WorkerReply): ColdvaultError {
  return new ColdvaultError((reply.code ?? 'IO') as ErrorCode, reply.message ?? 'chunk worker failed');
}

function ok(reply: WorkerReply): WorkerReply {
  if (!reply.ok) throw failure(reply);
  return reply;
}
