/**
 * The open uploads of this server, by id (128 random bits). An upload is used only through the store
 * in whose URL it was opened and by the principal that opened it; anyone else is told it does not
 * exist. An upload that ended is remembered a while (the newest 1000), so a late request learns how
 * it ended (UPLOAD_EXPIRED after the idle timeout, UPLOAD_NOT_FOUND once finished or aborted).
 */
import { randomBytes } from 'node:crypto';
import { ColdvaultError, formatBytes } from '../../core/index.js';
import type { Datastore, ReceivedCheck } from '../../datastore/index.js';
import type { TaskHandle, TaskStore } from '../../jobs/index.js';
import { SPACE_RESERVE, WorkerPool } from '../../pipeline/index.js';
import { ownedBody } from '../chunk-buffers.js';
import { endedError, Upload, type HeldGuest, type UploadEnd, type UploadInfo } from './upload.js';

export interface RegistryOptions {
  /** the node this server runs on (the upload tasks' node) */
  node: string;
  tasks: TaskStore;
  /** an upload idle this long is aborted (config uploadIdleSeconds) */
  idleMs: number;
  /** opens a store's folder (tests pass their clock and checkpoints: core/seams.ts) */
  openStore: (dir: string) => Promise<Datastore>;
}

export interface OpenRequest {
  store: string;
  dir: string;
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
  /** checks received chunks off the event loop, one worker per core (made at the first chunk, ended by close) */
  private pool: WorkerPool | undefined;
  private readonly check: ReceivedCheck = (hex, blob) => (this.pool ??= new WorkerPool()).checkReceived(blob, hex, ownedBody(blob));

  constructor(private readonly opts: RegistryOptions) {}

  get idleMs(): number {
    return this.opts.idleMs;
  }

  /** Opens an upload: space check, guest lock (LOCKED when busy), writer registration, stale leftovers removed, staging. */
  async start(req: OpenRequest): Promise<Upload> {
    const store = await this.opts.openStore(req.dir);
    await checkSpace(store, req.bytesEstimate ?? 0, req.store);
    const id = randomBytes(16).toString('base64url');
    const held = await holdGuest(store, req, id);
    const info: UploadInfo = { id, store: req.store, principal: req.principal, guestId: req.guestId, node: req.node, version: held.version, keep: req.keep };
    const task = await this.createTask(req, held);
    task.info(`upload ${id}: version ${info.version} of guest ${req.guestId} from node ${req.node}, staged in '${held.staging.dir}'`);
    const upload = new Upload(info, held, task, { idleMs: this.opts.idleMs, check: this.check }, (u, end) => this.ended(u, end));
    this.open.set(id, upload);
    return upload;
  }

  /** The upload's task ("receive guest 101 from node pve2 ..."); the guest is let go when it cannot be made. */
  private async createTask(req: OpenRequest, held: HeldGuest): Promise<TaskHandle> {
    try {
      return this.opts.tasks.create('upload', {
        node: this.opts.node,
        summary: `receive guest ${req.guestId} from node ${req.node} into datastore '${req.store}'`,
        startedBy: req.principal,
      });
    } catch (err) {
      await held.store.discardStaging(held.staging).catch(() => undefined);
      await held.writer.release();
      await held.lock.release();
      throw err;
    }
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

/** Refuses early, before anything is written, when the estimate does not fit beside the reserve. */
async function checkSpace(store: Datastore, bytesEstimate: number, name: string): Promise<void> {
  const { free } = await store.space();
  if (free >= bytesEstimate + SPACE_RESERVE) return;
  throw new ColdvaultError(
    'NO_SPACE',
    `not enough space in datastore '${name}' for this upload: it needs ${formatBytes(bytesEstimate + SPACE_RESERVE)} (estimate plus reserve), available ${formatBytes(free)}`,
  );
}

/** Takes the guest's lock, registers as a writer (the gc rule), removes stale staging, makes a staging folder; undone on failure. */
async function holdGuest(store: Datastore, req: OpenRequest, id: string): Promise<HeldGuest & { version: number }> {
  const purpose = `upload ${id} of guest ${req.guestId} from node ${req.node}`;
  const lock = await store.locks.acquire(`guest-${req.guestId}`, purpose);
  let writer;
  try {
    writer = await store.locks.registerWriter(purpose);
    await store.checkpoint('upload:registered');
    await store.cleanupStale(req.guestId);
    const version = await store.takeVersionNumber(req.guestId);
    return { store, lock, writer, version, staging: await store.createStaging(req.guestId) };
  } catch (err) {
    await writer?.release();
    await lock.release();
    throw err;
  }
}
