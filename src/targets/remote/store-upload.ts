/**
 * RemoteUpload: one open upload (one new version of one guest) in another node's datastore, as
 * RemoteStore.openUpload answers it. Its calls may run side by side (the client bounds how many are
 * in flight); `known`, `putChunk`, `putFile` and `abort` are idempotent and retried on connection
 * errors and 5xx, `finish` is not (a lost answer is not a reason to publish twice). The node aborts an
 * upload without a request for `idleTimeoutSeconds`: later calls get UPLOAD_EXPIRED.
 */
import { ColdvaultError, errnoCode, isColdvaultError } from '../../core/index.js';
import { isDigestHex, type Manifest } from '../../format/index.js';
import { answerJson, badAnswer, placeOf, type RequestPlace } from './remote-errors.js';
import { newWireStats, type Wire, type WireAnswer, type WireRequest, type WireStats } from './wire.js';

/** Most digests one `known` request may carry (the node's limit, server/routes/store-schemas.ts KNOWN_BATCH). */
export const KNOWN_BATCH_MAX = 4096;

/** What one upload put on the wire (bodies both ways, retries included) and what it sent. */
export interface UploadStats extends WireStats {
  digestsAsked: number;
  digestsMissing: number;
  chunksSent: number;
  /** blob bytes of the chunks sent (each counted once, however often it was retried) */
  chunkBytesSent: number;
  filesSent: number;
  fileBytesSent: number;
}

/** The context an upload's requests run in (RemoteStore makes it). */
export interface UploadContext {
  wire: Wire;
  node: string;
  store: string;
  /** `/api/v1/stores/<store>` */
  storePath: string;
  idleMs: number;
  finishMs: number;
  signal?: AbortSignal;
}

export interface OpenedUpload {
  id: string;
  version: number;
  idleTimeoutSeconds: number;
  guestId: string;
}

export class RemoteUpload {
  readonly id: string;
  /** the version number the node gave it; the manifest carries it */
  readonly version: number;
  readonly idleTimeoutSeconds: number;
  readonly guestId: string;
  readonly stats: UploadStats;

  constructor(
    private readonly ctx: UploadContext,
    opened: OpenedUpload,
    openStats: WireStats,
  ) {
    ({ id: this.id, version: this.version, idleTimeoutSeconds: this.idleTimeoutSeconds, guestId: this.guestId } = opened);
    this.stats = { ...newWireStats(), ...openStats, digestsAsked: 0, digestsMissing: 0, chunksSent: 0, chunkBytesSent: 0, filesSent: 0, fileBytesSent: 0 };
  }

  /** The digests of `digests` the node's store lacks, in the order asked (those it has are kept by its gc for this upload). */
  async known(digests: readonly string[]): Promise<string[]> {
    for (const hex of digests) checkDigest(hex);
    const batches: Array<Promise<string[]>> = [];
    for (let at = 0; at < digests.length; at += KNOWN_BATCH_MAX) batches.push(this.knownBatch(digests.slice(at, at + KNOWN_BATCH_MAX)));
    const missing = (await Promise.all(batches)).flat();
    this.stats.digestsAsked += digests.length;
    this.stats.digestsMissing += missing.length;
    return missing;
  }

  /** Sends one chunk blob exactly as the datastore stores it; the node stores it only when it hashes to `hex` (CHUNK_FORGED). */
  async putChunk(hex: string, blob: Uint8Array): Promise<void> {
    checkDigest(hex);
    await this.call({ method: 'PUT', path: `${this.path}/chunks/${hex}`, bytes: blob, idempotent: true }, `pushing chunk ${hex}`);
    this.stats.chunksSent++;
    this.stats.chunkBytesSent += blob.length;
  }

  /** Sends a file of the version: the guest config, the log, or `<disk key>.fidx` (every chunk it names must be there: CHUNK_MISSING). */
  async putFile(name: string, bytes: Uint8Array): Promise<void> {
    await this.call({ method: 'PUT', path: `${this.path}/files/${encodeURIComponent(name)}`, bytes, idempotent: true }, `pushing file ${name}`);
    this.stats.filesSent++;
    this.stats.fileBytesSent += bytes.length;
  }

  /**
   * Publishes the version (atomic on the node): `manifest` as the pipeline made it, without checksum;
   * its `version` is set to this upload's. A refusal (MANIFEST_INVALID, CHUNK_MISSING) leaves the upload
   * open: send what is missing and finish again. Never retried.
   */
  async finish(manifest: Manifest): Promise<{ version: number; bytesReceived: number }> {
    let answer: WireAnswer;
    try {
      answer = await this.call(
        {
          method: 'POST',
          path: `${this.path}/finish`,
          json: { manifest: { ...manifest, version: this.version } },
          idempotent: false,
          timeoutMs: this.ctx.finishMs,
        },
        'publishing',
      );
    } catch (err) {
      throw isColdvaultError(err, 'CONNECTION_FAILED') && !neverConnected(err) ? this.outcomeUnknown(err) : err;
    }
    return parseFinished(answer.body, this.ctx.node);
  }

  /** Ends the upload without a version (the node removes what it staged; gc collects its chunks). An upload already gone is fine. */
  async abort(): Promise<void> {
    try {
      // Two tries (a kept-alive connection may have gone stale), not the full retry chain: a push that
      // failed keeps its guest stopped until this returns, and a node that cannot be reached ends the
      // upload itself after its uploadIdleSeconds.
      await this.call({ method: 'DELETE', path: this.path, idempotent: true, attempts: 2 }, 'aborting');
    } catch (err) {
      if (!isColdvaultError(err, 'UPLOAD_NOT_FOUND') && !isColdvaultError(err, 'UPLOAD_EXPIRED')) throw err;
    }
  }

  /** The connection broke after finish was sent: the node may have published the version or not. */
  private outcomeUnknown(err: ColdvaultError): ColdvaultError {
    return new ColdvaultError(
      'CONNECTION_FAILED',
      `${err.message}; whether version ${this.version} of guest ${this.guestId} was published ${placeOf(this.ctx)} is unknown: its version list tells`,
      { cause: err },
    );
  }

  private get path(): string {
    return `${this.ctx.storePath}/uploads/${encodeURIComponent(this.id)}`;
  }

  private async knownBatch(digests: string[]): Promise<string[]> {
    const answer = await this.call(
      { method: 'POST', path: `${this.path}/known`, json: { digests }, idempotent: true },
      `asking which of ${digests.length} chunk(s) the store lacks`,
    );
    const missing = (answerJson(answer.body, this.ctx.node, 'known') as { missing?: unknown }).missing;
    if (!Array.isArray(missing) || !missing.every((d) => typeof d === 'string')) throw badAnswer(this.ctx.node, 'known', answer.body);
    return missing;
  }

  private call(req: Omit<WireRequest, 'place' | 'timeoutMs' | 'stats'> & { timeoutMs?: number }, doing: string): ReturnType<Wire['call']> {
    const place: RequestPlace = {
      doing: `${doing} (upload ${this.id}, version ${this.version} of guest ${this.guestId})`,
      node: this.ctx.node,
      store: this.ctx.store,
    };
    return this.ctx.wire.call({ timeoutMs: this.ctx.idleMs, signal: this.ctx.signal, ...req, place, stats: this.stats });
  }
}

/** Whether the request never reached the node (refused at connect): then nothing of it happened there. */
function neverConnected(err: unknown): boolean {
  for (let at: unknown = err; at instanceof Error; at = at.cause) if (errnoCode(at) === 'ECONNREFUSED') return true;
  return false;
}

function checkDigest(hex: string): void {
  if (!isDigestHex(hex)) throw new ColdvaultError('USAGE', `'${hex}' is not a chunk digest (64 lowercase hex digits)`);
}

function parseFinished(body: Buffer, node: string): { version: number; bytesReceived: number } {
  const parsed = answerJson(body, node, 'finish') as { version?: unknown; bytesReceived?: unknown };
  if (typeof parsed.version !== 'number' || typeof parsed.bytesReceived !== 'number') throw badAnswer(node, 'finish', body);
  return { version: parsed.version, bytesReceived: parsed.bytesReceived };
}
