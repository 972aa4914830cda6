/**
 * The remote target of a backup (backup-target.ts): a datastore on another node, pushed over the
 * remote datastore protocol (cluster mode; the node's side is server/uploads). hold asks the node for
 * the guest's versions there: the URL, the pinned certificate, the token and its scope are checked
 * before the guest is stopped, and the newest version's indexes prime the dedup (remote-chunk-sink.ts).
 * open opens the upload once the disks are frozen (the node locks the guest and registers the writer
 * then; it refuses early, NO_SPACE, when a first backup's allocated bytes cannot fit: a guest that has
 * versions there is guarded per write by the node instead, since most of its chunks are there).
 * publish sends the log and finishes (the node checks every chunk again and renames); discard aborts
 * (the node's idle timeout does it when this process is gone). The keep-N rotation runs on the node.
 * Changed-extent reads are not used against a node (no datastoreId): every pushed disk is read whole.
 */
import { describeError, type TaskLog } from '../core/index.js';
import type { Manifest } from '../format/index.js';
import { VERSION_LOG_FILE } from '../format/index.js';
import type { RemoteStore, RemoteUpload, RemoteVersion } from '../targets/index.js';
import type { BackupTarget, HeldTarget, VersionWriter } from './backup-target.js';
import { RemoteChunkSink } from './remote-chunk-sink.js';

export interface RemoteTargetOptions {
  remote: RemoteStore;
  /** the receiving node's name (cluster.nodes[].name), for messages */
  nodeName: string;
  /** this node's name: the manifest's and the upload's */
  self: string;
  signal?: AbortSignal;
}

export class RemoteTarget implements BackupTarget {
  readonly datastoreId = undefined;

  constructor(private readonly opts: RemoteTargetOptions) {}

  get label(): string {
    return `datastore '${this.opts.remote.store}' on node ${this.opts.nodeName} (${this.opts.remote.node})`;
  }

  async hold(guestId: string, _lockWaitMs: number, keep: number | undefined): Promise<HeldTarget> {
    const { remote } = this.opts;
    const start = { ...remote.stats };
    const versions = await remote.listVersions(guestId);
    const newest = versions.at(-1);
    return {
      checkSpace: () => Promise.resolve(), // the node checks at open and per write
      open: async (bytesEstimate, log) => {
        const upload = await remote.openUpload({
          guestId,
          node: this.opts.self,
          keep,
          signal: this.opts.signal,
          bytesEstimate: newest ? undefined : bytesEstimate,
        });
        const writer = new RemoteVersionWriter(this, upload, newest, start);
        try {
          await writer.prime(log);
        } catch (err) {
          await writer.discard();
          throw err;
        }
        return writer;
      },
      release: () => Promise.resolve(),
    };
  }

  get remote(): RemoteStore {
    return this.opts.remote;
  }
}

class RemoteVersionWriter implements VersionWriter {
  readonly chunks: RemoteChunkSink;

  constructor(
    private readonly target: RemoteTarget,
    private readonly upload: RemoteUpload,
    private readonly newest: RemoteVersion | undefined,
    private readonly start: { sentBytes: number; receivedBytes: number },
  ) {
    this.chunks = new RemoteChunkSink(upload);
  }

  get version(): number {
    return this.upload.version;
  }

  get where(): string {
    return `version ${this.upload.version} of guest ${this.upload.guestId} in ${this.target.label}`;
  }

  /** Asks the node about the chunks of the guest's newest version there (before the first disk). */
  prime(log: TaskLog): Promise<void> {
    return this.primeFrom(log);
  }

  async writeFile(name: string, data: Uint8Array | string): Promise<void> {
    await this.upload.putFile(name, typeof data === 'string' ? Buffer.from(data) : data);
  }

  async publish(manifest: Manifest, logText: string): Promise<{ pruned: number[] }> {
    await this.upload.putFile(VERSION_LOG_FILE, Buffer.from(logText));
    await this.upload.finish(manifest);
    return { pruned: [] };
  }

  async discard(): Promise<void> {
    await this.upload.abort().catch(() => undefined);
  }

  wire(): { sentBytes: number; receivedBytes: number } {
    const now = this.target.remote.stats;
    return { sentBytes: now.sentBytes - this.start.sentBytes, receivedBytes: now.receivedBytes - this.start.receivedBytes };
  }

  private async primeFrom(log: TaskLog): Promise<void> {
    if (!this.newest) return;
    const { remote } = this.target;
    const guestId = this.upload.guestId;
    try {
      const manifest = await remote.getManifest(guestId, this.newest.version);
      const hexes: string[] = [];
      for (const disk of manifest.disks) {
        const index = await remote.getIndex(guestId, manifest.version, disk.index);
        for (const digest of index.digests) if (digest) hexes.push(digest.toString('hex'));
      }
      const there = await this.chunks.prime(hexes);
      log.info(`${there} chunk(s) of version ${manifest.version} on the node are reused without a question each`);
    } catch (err) {
      log.warn(`reading version ${this.newest.version} of guest ${guestId} from the node failed (${describeError(err)}): every chunk is asked about`);
    }
  }
}
