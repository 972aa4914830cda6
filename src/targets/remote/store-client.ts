/**
 * RemoteStore: a datastore on another node, through the remote datastore protocol of its
 * `coldvault serve` (API v1 under /api/v1/stores/<store>; the server side is server/routes/store-*.ts).
 * Writer: openUpload -> RemoteUpload (known, putChunk, putFile, finish, abort). Reader: storeKind, listGuests, listVersions,
 * getFile / getManifest / getIndex (manifest and index checked against their own checksums),
 * getChunk (the blob, checked here: CRC, decode, SHA-256 against its name) and readChunkInto (the blob
 * into a caller's buffer, unchecked, the contract of the datastore's ChunkStore.readInto: a restore
 * or verify reads it into its pooled buffers and checks it in its worker pool, as for a local store).
 *
 * Errors name what was done, the datastore, the node's URL and the node's reason (remote-errors.ts);
 * connection, TLS and fingerprint errors name the request's URL (pinned-fetch.ts requestError).
 */
import { ColdvaultError } from '../../core/index.js';
import { CHUNK_SIZE, decodeFixedIndex, decodeManifest, type FixedIndex, isDigestHex, MANIFEST_FILE, type Manifest, maxBlobSize } from '../../format/index.js';
import { checkChunkBlob, chunkScratch } from './chunk-check.js';
import { answerJson, badAnswer, placeOf } from './remote-errors.js';
import { type RemoteStoreOptions, type ResolvedOptions, resolveOptions } from './store-options.js';
import { type AttachDeviceRequest, type AttachedRemoteDevice, attachRemoteDevice, type DeviceCalls, detachRemoteDevice } from './store-device.js';
import { leaseRemoteVersion, type RemoteLease } from './store-lease.js';
import { RemoteUpload } from './store-upload.js';
import type { TokenBucket } from './token-bucket.js';
import { newWireStats, Wire, type WireRequest, type WireStats } from './wire.js';

export interface OpenUploadRequest {
  guestId: string;
  /** the pushing node's name (config `node`); the manifest must name it */
  node: string;
  /** bytes the upload may add at most: the node refuses at once (NO_SPACE) when they do not fit */
  bytesEstimate?: number;
  /** keep-N rotation of the guest on the node after the publish */
  keep?: number;
  /** aborts the upload's requests in flight (ABORTED); the upload itself still needs abort() */
  signal?: AbortSignal;
}

/** A version as the node lists it (its catalog's row, as GET /api/v1/backups answers). */
export interface RemoteVersion {
  id: string;
  version: number;
  time: string;
  name: string;
  node: string;
  disks: Array<{ key: string; volume: string; format: string; size: number; sha256: string; zeroBytes: number }>;
  verified: boolean;
  verifyState: string;
  verifiedAt: string | null;
  protected: boolean;
  logicalBytes: number;
  zeroBytes: number;
  newBytes: number;
  storedBytes: number;
  downtimeMs: number | null;
  /** absent from nodes that predate encryption */
  encrypted?: boolean;
  keyFingerprint?: string | null;
  store: string;
}

/** Files of a version are at most this large (an index of a 64 TiB disk is 512 MiB: larger is refused). */
const MAX_FILE_BYTES = 512 * 1024 * 1024;

export class RemoteStore {
  /** the node, `https://host:port/` */
  readonly node: string;
  readonly store: string;
  private readonly opts: ResolvedOptions;
  private readonly wire: Wire;
  private scratch: Buffer | undefined;

  constructor(options: RemoteStoreOptions) {
    this.opts = resolveOptions(options);
    this.node = this.opts.node;
    this.store = this.opts.store;
    this.wire = new Wire(this.opts);
  }

  /** Bytes of bodies on the wire, requests and retries of this client so far. */
  get stats(): Readonly<WireStats> {
    return this.wire.stats;
  }

  /** The bandwidth limit's bucket (undefined without one). */
  get limiter(): TokenBucket | undefined {
    return this.opts.limiter;
  }

  /** Requests in flight at most, and the most there were at once so far. */
  get maxInFlight(): number {
    return this.opts.maxInFlight;
  }

  get peakInFlight(): number {
    return this.wire.peakInFlight;
  }

  /** Opens an upload of a new version of `guestId`; LOCKED while the guest is busy there, NO_SPACE when the estimate does not fit. Never retried. */
  async openUpload(req: OpenUploadRequest): Promise<RemoteUpload> {
    const { signal, ...body } = req;
    const stats = newWireStats();
    const answer = await this.call(
      { method: 'POST', path: `${this.storePath}/uploads`, json: body, idempotent: false, stats, signal },
      `opening an upload of guest ${req.guestId} (pushed by node ${req.node})`,
    );
    const opened = answerJson(answer.body, this.node, 'open');
    const { upload, version, idleTimeoutSeconds } = opened;
    if (typeof upload !== 'string' || typeof version !== 'number' || typeof idleTimeoutSeconds !== 'number') throw badAnswer(this.node, 'open', answer.body);
    const ctx = {
      wire: this.wire,
      node: this.node,
      store: this.store,
      storePath: this.storePath,
      idleMs: this.opts.timeouts.idleMs,
      finishMs: this.opts.timeouts.finishMs,
      signal,
    };
    return new RemoteUpload(ctx, { id: upload, version, idleTimeoutSeconds, guestId: req.guestId }, stats);
  }

  /** What kind of datastore the store is on the node: a folder or an S3 bucket (GET /api/v1/stores/<store>). */
  async storeKind(): Promise<'folder' | 's3'> {
    const answer = await this.call({ method: 'GET', path: this.storePath, idempotent: true }, 'asking what kind of datastore it is');
    const kind = (answerJson(answer.body, this.node, 'the store kind') as { kind?: unknown }).kind;
    if (kind !== 'folder' && kind !== 's3') throw badAnswer(this.node, 'the store kind', answer.body);
    return kind;
  }

  /** The guests that have versions in the store (GET .../guests), in ascending order. */
  async listGuests(): Promise<string[]> {
    const answer = await this.call({ method: 'GET', path: `${this.storePath}/guests`, idempotent: true }, 'listing the guests');
    const list: unknown = answerJson(answer.body, this.node, 'the guest list');
    if (!Array.isArray(list) || !list.every((id) => typeof id === 'string')) throw badAnswer(this.node, 'the guest list', answer.body);
    return list;
  }

  /** The versions of `guestId` in the store, oldest first. */
  async listVersions(guestId: string): Promise<RemoteVersion[]> {
    const answer = await this.call(
      { method: 'GET', path: `${this.guestPath(guestId)}/versions`, idempotent: true },
      `listing the versions of guest ${guestId}`,
    );
    const list: unknown = answerJson(answer.body, this.node, 'the version list');
    if (!Array.isArray(list)) throw badAnswer(this.node, 'the version list', answer.body);
    return list as RemoteVersion[];
  }

  /** A file of a version as stored (manifest, config, log, index); VERSION_NOT_FOUND, REMOTE_NOT_FOUND for a file it lacks. */
  async getFile(guestId: string, version: number, name: string): Promise<Buffer> {
    const path = `${this.guestPath(guestId)}/versions/${version}/files/${encodeURIComponent(name)}`;
    const answer = await this.call(
      { method: 'GET', path, idempotent: true, maxBody: MAX_FILE_BYTES },
      `reading ${name} of version ${version} of guest ${guestId}`,
    );
    return answer.body;
  }

  /** The manifest of a version, checked (checksum, schema): MANIFEST_CORRUPT naming the node otherwise. */
  async getManifest(guestId: string, version: number): Promise<Manifest> {
    return decodeManifest(await this.getFile(guestId, version, MANIFEST_FILE), `of version ${version} of guest ${guestId} ${placeOf(this)}`);
  }

  /** A disk's index of a version, checked (checksum, sizes): INDEX_CORRUPT naming the node otherwise. */
  async getIndex(guestId: string, version: number, name: string): Promise<FixedIndex> {
    return decodeFixedIndex(await this.getFile(guestId, version, name), `${name} of version ${version} of guest ${guestId} ${placeOf(this)}`);
  }

  /**
   * The blob of chunk `hex`, checked here before it is answered (magic, CRC, decode, SHA-256 against
   * `hex`: CHUNK_CORRUPT naming the digest and the node); CHUNK_MISSING when the store lacks it.
   * For a sync, which stores the blob as it is. Checks on this thread, into one scratch buffer.
   */
  async getChunk(hex: string): Promise<Buffer> {
    const answer = await this.call(
      { method: 'GET', path: this.chunkPath(hex), idempotent: true, blob: true, maxBody: maxBlobSize(CHUNK_SIZE) },
      `reading chunk ${hex}`,
    );
    this.scratch ??= chunkScratch();
    checkChunkBlob(hex, answer.body, `datastore '${this.store}' on node ${this.node}`, this.scratch);
    return answer.body;
  }

  /**
   * Reads the blob of chunk `hex` into `buf` from `offset` on and returns its length, UNCHECKED: the
   * contract of ChunkStore.readInto (CHUNK_MISSING; CHUNK_CORRUPT when it does not fit), so a restore or
   * verify reads remote chunks through its pooled buffers and checks them in its worker pool.
   */
  async readChunkInto(hex: string, buf: ArrayBuffer, offset = 0): Promise<number> {
    const answer = await this.call({ method: 'GET', path: this.chunkPath(hex), idempotent: true, blob: true, into: { buf, offset } }, `reading chunk ${hex}`);
    return answer.length;
  }

  /** Has the node hold version `version` of `guestId` against prune until released (store-lease.ts); VERSION_NOT_FOUND when it is not there. */
  leaseVersion(guestId: string, version: number): Promise<RemoteLease> {
    return leaseRemoteVersion({ node: this.node, storePath: this.storePath, call: (req, doing) => this.call(req, doing) }, guestId, version);
  }

  /** Closes the kept-alive connections; requests in flight and later ones fail with ABORTED. */
  close(): void {
    this.wire.close();
  }

  private get storePath(): string {
    return `/api/v1/stores/${encodeURIComponent(this.store)}`;
  }

  private guestPath(guestId: string): string {
    return `${this.storePath}/guests/${encodeURIComponent(guestId)}`;
  }

  private chunkPath(hex: string): string {
    if (!isDigestHex(hex)) throw new ColdvaultError('USAGE', `'${hex}' is not a chunk digest (64 lowercase hex digits)`);
    return `${this.storePath}/chunks/${hex}`;
  }

  private call(req: Omit<WireRequest, 'place' | 'timeoutMs'>, doing: string): ReturnType<Wire['call']> {
    return this.wire.call({ timeoutMs: this.opts.timeouts.idleMs, ...req, place: { doing, node: this.node, store: this.store } });
  }

  /**
   * Has the node mount the job's external disk on this store's folder, checked as a local job's disk
   * (store-device.ts); kept attached by a keep-alive until detachDevice. Never retried.
   */
  attachDevice(req: AttachDeviceRequest): Promise<AttachedRemoteDevice> {
    return attachRemoteDevice(this.deviceCalls(), req);
  }

  /** Has the node sync and unmount the disk of `attachment` (idempotent; LOCKED while an upload into the store is open). */
  detachDevice(attachment: string): Promise<void> {
    return detachRemoteDevice(this.deviceCalls(), attachment);
  }

  private deviceCalls(): DeviceCalls {
    return { node: this.node, storePath: this.storePath, finishMs: this.opts.timeouts.finishMs, call: (req, doing) => this.call(req, doing) };
  }
}
