/**
 * One upload: a new version of one guest being pushed into a store. It holds the guest in its
 * receiving store (receiving.ts: the guest lock, a writer registration, the version being made) from
 * open to end (registry.ts opens it). Requests run side by side (several chunks in flight); finish
 * runs alone: it waits for the requests in flight and refuses new ones (LOCKED) until it answers. The
 * idle clock runs only while no request does: after `idleMs` without one the upload is aborted
 * (UPLOAD_EXPIRED from then on).
 */
import { ColdvaultError, describeError, formatBytes } from '../../core/index.js';
import type { ReceivedCheck } from '../../datastore/index.js';
import type { TaskHandle } from '../../jobs/index.js';
import { releaseBody } from '../chunk-buffers.js';
import { fileKind } from './files.js';
import { publishUpload } from './publish.js';
import type { ReceivingStore } from './receiving.js';

export type UploadEnd = 'finished' | 'aborted' | 'expired' | 'shutdown';

export interface UploadInfo {
  id: string;
  /** the configured name of the store, as in the URL */
  store: string;
  /** who opened it (`token:<name>`); only they may use it */
  principal: string;
  guestId: string;
  node: string;
  version: number;
  keep?: number;
}

/** Bytes received per upload: request bodies (chunks, files, JSON), for the task log and metrics. */
export interface UploadStats {
  requestBytes: number;
  chunks: number;
  chunkBytes: number;
  files: number;
  fileBytes: number;
  /** digests asked about with `known`, and how many of them were missing */
  asked: number;
  missing: number;
}

export class Upload {
  readonly stats: UploadStats = { requestBytes: 0, chunks: 0, chunkBytes: 0, files: 0, fileBytes: 0, asked: 0, missing: 0 };
  /** names of the files received (config, log, indexes) */
  readonly files = new Set<string>();
  /** set by publish once the version is visible */
  published = false;
  private state: 'open' | 'finishing' | UploadEnd = 'open';
  private readonly inflight = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly info: UploadInfo,
    readonly receiving: ReceivingStore,
    readonly task: TaskHandle,
    private readonly opts: { idleMs: number; check: ReceivedCheck },
    private readonly onEnd: (upload: Upload, end: UploadEnd) => void,
  ) {
    this.arm();
  }

  /** The chunks of `digests` the store lacks; the others stay kept for this upload (a folder touches them now). */
  known(digests: readonly string[], requestBytes: number): Promise<string[]> {
    return this.run(requestBytes, async () => {
      const missing = await this.receiving.known(digests);
      this.stats.asked += digests.length;
      this.stats.missing += missing.length;
      return missing;
    });
  }

  putChunk(hex: string, blob: Buffer): Promise<void> {
    const bytes = blob.length; // the check may transfer the blob's buffer to a worker (detached here)
    return this.run(bytes, async () => {
      releaseBody(await this.receiving.putChunk(hex, blob, this.opts.check));
      this.stats.chunks++;
      this.stats.chunkBytes += bytes;
    });
  }

  putFile(name: string, data: Buffer): Promise<void> {
    return this.run(data.length, async () => {
      await this.receiving.putFile(name, fileKind(name), data);
      releaseBody(data);
      this.files.add(name);
      this.stats.files++;
      this.stats.fileBytes += data.length;
    });
  }

  /** Checks and publishes the version; a refusal (MANIFEST_INVALID, CHUNK_MISSING) leaves the upload open. */
  finish(manifest: unknown, requestBytes: number): Promise<{ version: number; bytesReceived: number }> {
    this.usable();
    this.state = 'finishing';
    this.stats.requestBytes += requestBytes;
    clearTimeout(this.timer);
    const work = (async () => {
      await Promise.allSettled([...this.inflight]);
      try {
        await publishUpload(this, manifest);
        return { version: this.info.version, bytesReceived: this.stats.requestBytes };
      } catch (err) {
        if (!this.published) this.task.warn(`finish refused: ${describeError(err)}`);
        throw err;
      } finally {
        if (this.state === 'finishing') this.state = 'open';
      }
    })();
    return this.track(work);
  }

  /** The sender's abort (DELETE): LOCKED while its finish runs (that answer decides), else as abort. */
  cancel(by: string): Promise<void> {
    this.usable();
    return this.abort('aborted', `aborted by ${by}`);
  }

  /**
   * Ends the upload without a version, after the requests in flight (a finish in flight that
   * publishes wins): what the version had discarded, lock and registration released; what it sent is left to gc.
   */
  async abort(end: Exclude<UploadEnd, 'finished'>, why: string): Promise<void> {
    if (this.state !== 'open' && this.state !== 'finishing') return;
    this.markEnded(end);
    await Promise.allSettled([...this.inflight]);
    if (!this.published) await this.discard(why);
  }

  /** Ends the upload as `end` at once: from now on every request on it gets that answer. */
  markEnded(end: UploadEnd): void {
    this.state = end;
    clearTimeout(this.timer);
    this.onEnd(this, end);
  }

  /** Discards the version being made, releases the guest, fails the task. */
  async discard(why: string): Promise<void> {
    await this.receiving.discard();
    await this.release();
    this.task.error(`upload aborted: ${why}; nothing was published (${this.describeStats()})`);
    this.task.finish(false, { error: why, ...this.result() });
  }

  release(): Promise<void> {
    return this.receiving.release();
  }

  describeStats(): string {
    const s = this.stats;
    return `received ${s.chunks} chunk(s), ${formatBytes(s.chunkBytes)}, and ${s.files} file(s), ${formatBytes(s.fileBytes)}; ${formatBytes(s.requestBytes)} in request bodies; ${s.missing} of ${s.asked} digest(s) asked about were missing`;
  }

  result(): Record<string, unknown> {
    return { store: this.info.store, guestId: this.info.guestId, node: this.info.node, version: this.info.version, ...this.stats };
  }

  /** Runs one request's work beside the others; the idle clock stops while any runs. */
  private run<T>(requestBytes: number, work: () => Promise<T>): Promise<T> {
    this.usable();
    this.stats.requestBytes += requestBytes;
    clearTimeout(this.timer);
    return this.track(
      work().catch((err: unknown) => {
        this.task.warn(`refused: ${describeError(err)}`);
        throw err;
      }),
    );
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inflight.add(work);
    const settle = (): void => {
      this.inflight.delete(work);
      if (this.inflight.size === 0 && this.state === 'open') this.arm();
    };
    work.then(settle, settle);
    return work;
  }

  private usable(): void {
    if (this.state === 'finishing')
      throw new ColdvaultError('LOCKED', `upload ${this.info.id} of guest ${this.info.guestId} is finishing; wait for its answer`);
    if (this.state !== 'open') throw endedError(this.info.id, this.state, this.opts.idleMs);
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.abort('expired', `no request for ${this.opts.idleMs / 1000} s (uploadIdleSeconds)`), this.opts.idleMs);
    this.timer.unref();
  }
}

/** The error for a request on an upload that has ended. */
export function endedError(id: string, end: UploadEnd, idleMs: number): ColdvaultError {
  if (end === 'expired') {
    return new ColdvaultError('UPLOAD_EXPIRED', `upload ${id} was aborted after ${idleMs / 1000} s without a request (uploadIdleSeconds); open a new one`);
  }
  const how = end === 'finished' ? 'is finished' : end === 'shutdown' ? 'was aborted when the server shut down' : 'was aborted';
  return new ColdvaultError('UPLOAD_NOT_FOUND', `upload ${id} ${how}; open a new one`);
}
