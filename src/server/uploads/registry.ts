/**
 * The open uploads of this server, by id (128 random bits). An upload is used only through the store
 * in whose URL it was opened and by the principal that opened it; anyone else is told it does not
 * exist. An upload that ended is remembered a while (the newest 1000), so a late request learns how
 * it ended (UPLOAD_EXPIRED after the idle timeout, UPLOAD_NOT_FOUND once finished or aborted).
 */
import { randomBytes } from 'node:crypto';
import { ColdvaultError, type TaskLog } from '../../core/index.js';
import type { ReceivedCheck } from '../../datastore/index.js';
import type { TaskHandle, TaskStore } from '../../jobs/index.js';
import { WorkerPool } from '../../pipeline/index.js';
import { ownedBody } from '../chunk-buffers.js';
import type { KnownStore } from '../paths.js';
import { EarlyLog, type HoldRequest, type ReceivingStore } from './receiving.js';
import { endedError, Upload, type UploadEnd, type UploadInfo } from './upload.js';

export interface RegistryOptions {
  /** the node this server runs on (the upload tasks' node) */
  node: string;
  tasks: TaskStore;
  /** an upload idle this long is aborted (config uploadIdleSeconds) */
  idleMs: number;
  /** opens the receiving side of an upload into a configured store, folder or S3 (open-receiving.ts) */
  receive: (ref: KnownStore, hold: HoldRequest, log: TaskLog) => Promise<ReceivingStore>;
}

export interface OpenRequest {
  /** the configured store of the URL */
  ref: KnownStore;
  principal: string;
  guestId: string;
  node: string;
  bytesEstimate?: number;
  keep?: number;
}

/** Who asks about an upload: the store of the URL and the principal. */
export interface Asker {
  store: string;
  principal: string;
}

const REMEMBERED_ENDS = 1000;

export class UploadRegistry {
  private readonly open = new Map<string, Upload>();
  private readonly ends = new Map<string, UploadEnd>();
  /**
   * checks received chunks off the event loop, one worker per core: made when the first upload opens
   * (a worker takes ~0.1 s to start; made at the first chunk, it left the sender waiting with its
   * chunks in flight), kept for the next uploads, ended by abortAll
   */
  private pool: WorkerPool | undefined;
  private readonly check: ReceivedCheck = (hex, blob) => this.workers().checkReceived(blob, hex, ownedBody(blob));

  constructor(private readonly opts: RegistryOptions) {}

  get idleMs(): number {
    return this.opts.idleMs;
  }

  /** Opens an upload: the receiving store holds the guest (LOCKED when busy; a folder refuses NO_SPACE early) and opens a version. */
  async start(req: OpenRequest): Promise<Upload> {
    this.workers();
    const id = randomBytes(16).toString('base64url');
    const store = req.ref.name;
    const purpose = `upload ${id} of guest ${req.guestId} from node ${req.node}`;
    const early = new EarlyLog();
    const hold: HoldRequest = { storeName: store, guestId: req.guestId, purpose, keep: req.keep, bytesEstimate: req.bytesEstimate ?? 0 };
    const receiving = await this.opts.receive(req.ref, hold, early);
    const info: UploadInfo = { id, store, principal: req.principal, guestId: req.guestId, node: req.node, version: receiving.version, keep: req.keep };
    const task = await this.createTask(req, receiving);
    early.replayInto(task);
    task.info(`upload ${id}: version ${info.version} of guest ${req.guestId} from node ${req.node}, staged in '${receiving.staged}'`);
    const upload = new Upload(info, receiving, task, { idleMs: this.opts.idleMs, check: this.check }, (u, end) => this.ended(u, end));
    this.open.set(id, upload);
    return upload;
  }

  /** The upload's task ("receive guest 101 from node pve2 ..."); the guest is let go when it cannot be made. */
  private async createTask(req: OpenRequest, receiving: ReceivingStore): Promise<TaskHandle> {
    try {
      const kind = req.ref.kind === 's3' ? 'S3 datastore' : 'datastore';
      return this.opts.tasks.create('upload', {
        node: this.opts.node,
        summary: `receive guest ${req.guestId} from node ${req.node} into ${kind} '${req.ref.name}'`,
        startedBy: req.principal,
      });
    } catch (err) {
      await receiving.discard();
      await receiving.release();
      throw err;
    }
  }

  private workers(): WorkerPool {
    this.pool ??= new WorkerPool();
    return this.pool;
  }

  /** The open upload `id` for this asker; UPLOAD_NOT_FOUND / UPLOAD_EXPIRED otherwise. */
  get(id: string, asker: Asker): Upload {
    const upload = this.open.get(id);
    if (upload && upload.info.store === asker.store && upload.info.principal === asker.principal) return upload;
    const end = upload ? undefined : this.ends.get(id);
    if (end) throw endedError(id, end, this.opts.idleMs);
    throw new ColdvaultError('UPLOAD_NOT_FOUND', `there is no upload ${id} of ${asker.principal} into datastore '${asker.store}'`);
  }

  /** How many uploads into `store` (its configured name) are open: an external disk is not let go under one (store-devices.ts). */
  openIn(store: string): number {
    return [...this.open.values()].filter((u) => u.info.store === store).length;
  }

  /** Aborts every open upload and ends the check workers (the server is shutting down). */
  async abortAll(): Promise<void> {
    await Promise.all([...this.open.values()].map((u) => u.abort('shutdown', 'the server is shutting down')));
    await this.pool?.close();
    this.pool = undefined;
  }

  private ended(upload: Upload, end: UploadEnd): void {
    this.open.delete(upload.info.id);
    this.ends.delete(upload.info.id);
    this.ends.set(upload.info.id, end);
    for (const old of this.ends.keys()) {
      if (this.ends.size <= REMEMBERED_ENDS) break;
      this.ends.delete(old);
    }
  }
}
