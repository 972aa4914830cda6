/**
 * The receiving store of an upload: the port between one upload flow (upload.ts, publish.ts,
 * version-check.ts) and the datastore it writes into, a folder (receiving-folder.ts) or a configured
 * S3 datastore (receiving-s3.ts). Opening one holds the guest for the upload (guest lock, writer
 * registration, dead runs' leftovers removed, a version number taken); each implementation keeps the
 * protocol's guarantees for its kind of store and says why in its header. Whatever it is, a received
 * chunk is stored only after the check it is handed (CHUNK_FORGED otherwise), an index only when every
 * chunk it names is there (CHUNK_MISSING), and the version is visible only once `publish` returns.
 */
import type { TaskLog } from '../../core/index.js';
import type { ReceivedCheck } from '../../datastore/index.js';
import type { Manifest } from '../../format/index.js';
import type { FileKind } from './files.js';

/** What the upload asks of the store it opens. */
export interface HoldRequest {
  /** the configured name of the store, for messages */
  storeName: string;
  guestId: string;
  /** what holds the locks (`upload <id> of guest 101 from node pve2`) */
  purpose: string;
  /** keep-N rotation of the guest after the publish */
  keep?: number;
  /** bytes the upload may add at most: a store that has free space to ask about refuses early (NO_SPACE) */
  bytesEstimate: number;
}

export interface ReceivingStore {
  /** the version number taken at open */
  readonly version: number;
  /** where the version is being made, and where it is once published (for the task log) */
  readonly staged: string;
  readonly published: string;
  /** the sender's dedup question: the digests not known to be in the store (those that are stay kept for this upload) */
  known(digests: readonly string[]): Promise<string[]>;
  /** stores a received blob once `check` took it; answers the checked blob (whose buffer the caller hands back) */
  putChunk(hex: string, blob: Buffer, check: ReceivedCheck): Promise<Uint8Array>;
  /** a file of the version; an index is checked first (its chunk size, every chunk it names there) */
  putFile(name: string, kind: FileKind, data: Buffer): Promise<void>;
  /** a file received before (finish reads the config and the indexes back) */
  readFile(name: string): Promise<Buffer>;
  /** the last look before the publish: those of `digests` that are not there */
  lastLook(digests: ReadonlySet<string>): Promise<string[]>;
  /** writes the manifest and makes the version visible; throws only when nothing was published */
  publish(manifest: Manifest, log: TaskLog): Promise<void>;
  /** after publish: the catalog and the keep-N rotation; a failure is a WARN line; answers the versions pruned */
  record(manifest: Manifest, log: TaskLog): Promise<number[]>;
  /** any end without publish: nothing visible; what was stored is left to gc (best effort, never throws) */
  discard(): Promise<void>;
  /** lets the guest lock and the writer registration go, and whatever the store held open */
  release(): Promise<void>;
}

/** Opens the receiving side of an upload into a configured store; `log` takes what opening says. */
export type OpenReceiving = (hold: HoldRequest, log: TaskLog) => Promise<ReceivingStore>;

/** A log that keeps the lines of the open until the upload's task exists. */
export class EarlyLog implements TaskLog {
  private readonly lines: Array<[keyof TaskLog, string]> = [];

  info(message: string): void {
    this.lines.push(['info', message]);
  }

  warn(message: string): void {
    this.lines.push(['warn', message]);
  }

  error(message: string): void {
    this.lines.push(['error', message]);
  }

  replayInto(log: TaskLog): void {
    for (const [level, message] of this.lines) log[level](message);
  }
}
