/**
 * Version sources: where the versions that restore and verify read live, and what those flows need
 * from it: the guests and their version numbers, a version's manifest and indexes (checked against
 * their own checksums), a chunk reader with the contract of ChunkStore.readInto (the blob into a pooled
 * buffer, unchecked: the worker pool checks CRC and SHA-256 of every chunk, wherever it came from), a
 * read lease on a version, and `describe` for messages.
 *
 * - local (`localSource`): a datastore folder (Datastore). The lease keeps prune from removing the
 *   version while it is read (datastore/version-use.ts); verify may quarantine damaged chunks there,
 *   checks the store's file modes, and a restore's lock lives in the store's lock folder.
 * - remote (`remoteSource`, `openRemoteSource`): datastore STORE on cluster node NODE, read through its
 *   `coldvault serve` (targets/remote RemoteStore, the reader half of the remote datastore protocol,
 *   with the scoped token and pinned fingerprint of config `cluster.nodes`). What it does not give:
 *   - the read lease is the node's: its serve holds one for this reader (RemoteStore.leaseVersion,
 *     server/read-leases.ts) and ends it when released, or by itself after its idle time without a
 *     keep-alive (this process gone or cut off). Should it end under a reader that still runs, a prune
 *     and gc on that node can remove chunks under the restore; the restore then fails with
 *     CHUNK_MISSING and leaves nothing behind (disks are written under temp names), and never writes
 *     wrong data (every chunk is checked against its digest, every index against the manifest's disk SHA-256).
 *   - no quarantine: a damaged chunk stays on that node; verify reports it, `coldvault verify` run on
 *     that node moves it aside.
 *   - no locks and no catalog: a restore's lock lives in this node's state dir (the caller gives it),
 *     and verify's verdicts are not recorded on that node.
 */
import { stat } from 'node:fs/promises';
import { ColdvaultError, errnoCode } from '../core/index.js';
import { leaseVersion, type Datastore, type LockDir, type S3Datastore } from '../datastore/index.js';
import type { FixedIndex, Manifest } from '../format/index.js';
import { type ClusterConfig, RemoteStore, ringStoreOptions } from '../targets/index.js';

/** Reads a chunk's blob into `buf` from `offset` on, unchecked; CHUNK_MISSING when it is not there (ChunkStore.readInto). */
export interface ChunkSource {
  readInto(hex: string, buf: ArrayBuffer, offset?: number): Promise<number>;
  /**
   * Reads to keep in flight when more than a local disk needs: each read of a remote source waits
   * a round trip and the node's work, so a restore or verify keeps this many requests going (the
   * client's connection bound) instead of the few a disk wants. Undefined for a local store.
   */
  readonly readsInFlight?: number;
  /**
   * True when a read may land at any offset of a buffer (a remote node, S3: no O_DIRECT), so the chunk
   * reader can put a raw blob's payload where a restore writes the chunk from (chunk-reader.ts).
   */
  readonly readsAnywhere?: boolean;
}

export interface VersionLease {
  release(): Promise<void>;
}

export interface VersionSource {
  /** for messages: "datastore '/srv/cv'" or "datastore 'main' on node node1 (https://10.0.0.1:8007/)" */
  readonly describe: string;
  readonly chunks: ChunkSource;
  listGuestIds(): Promise<string[]>;
  /** oldest first */
  listVersionNumbers(guestId: string): Promise<number[]>;
  /** VERSION_NOT_FOUND for a version that is not there */
  readManifest(guestId: string, version: number): Promise<Manifest>;
  readIndex(guestId: string, version: number, name: string): Promise<FixedIndex>;
  /** whether the version is gone (pruned while it was read); false when that cannot be told */
  versionGone(guestId: string, version: number): Promise<boolean>;
  /** keeps prune from removing the version until released (a remote source: the node holds it, see the header) */
  lease(guestId: string, version: number, purpose: string): Promise<VersionLease>;
  /**
   * A durable hold: keeps prune from removing the version while `whileFile` exists on this host,
   * whatever becomes of this process (a live restore's journal). Answers a reference for `dropHold`,
   * which any later process may call. None for a remote source (its node holds leases only while a
   * reader keeps them alive).
   */
  readonly hold?: (guestId: string, version: number, purpose: string, whileFile: string) => Promise<string>;
  readonly dropHold?: (ref: string) => Promise<void>;
  /** a named point of a flow (the datastore's test seams); nothing for a remote source */
  checkpoint(step: string): Promise<void>;
  /** where a restore's lock lives by default; a remote source has none: the caller gives one */
  readonly locks?: LockDir;
  /** moves a damaged chunk aside (its new path; undefined when it was gone); a remote source cannot */
  readonly quarantine?: (digest: string) => Promise<string | undefined>;
  /** makes the next backup that meets a missing chunk's data write it (S3: a backup does not look per chunk) */
  readonly markMissing?: (digest: string) => Promise<void>;
  /** the folder whose file modes verify checks (local only) */
  readonly dir?: string;
  /** ends what the source holds open (a remote source's connections) */
  close(): void;
}

/** What restore and verify are given: a local datastore, or any version source. */
export type SourceRef = { store: Datastore; source?: never } | { source: VersionSource; store?: never };

export function sourceOf(ref: SourceRef): VersionSource {
  return ref.source ?? localSource(ref.store);
}

/** A datastore folder as a version source. */
export function localSource(store: Datastore): VersionSource {
  return {
    describe: `datastore '${store.dir}'`,
    chunks: store.chunks,
    listGuestIds: () => store.listGuestIds(),
    listVersionNumbers: (guestId) => store.listVersionNumbers(guestId),
    readManifest: (guestId, version) => store.readManifest(guestId, version),
    readIndex: (guestId, version, name) => store.readIndex(guestId, version, name),
    // only ENOENT counts: a folder that cannot be looked at (EIO on a failing disk) is not gone
    versionGone: (guestId, version) =>
      stat(store.versionDir(guestId, version)).then(
        () => false,
        (err: unknown) => errnoCode(err) === 'ENOENT',
      ),
    lease: (guestId, version, purpose) => leaseVersion(store, guestId, version, purpose),
    hold: async (guestId, version, purpose, whileFile) => (await leaseVersion(store, guestId, version, purpose, 60_000, { whileFile })).path,
    dropHold: (ref) => store.locks.dropRegistration(ref),
    checkpoint: (step) => store.checkpoint(step),
    locks: store.locks,
    quarantine: (digest) => store.chunks.quarantine(digest),
    dir: store.dir,
    close: () => undefined,
  };
}

/** Datastore `remote.store` on cluster node `nodeName` as a version source (see the header for what it lacks). */
export function remoteSource(remote: RemoteStore, nodeName: string): VersionSource {
  const describe = `datastore '${remote.store}' on node ${nodeName} (${remote.node})`;
  const listVersionNumbers = async (guestId: string): Promise<number[]> => (await remote.listVersions(guestId)).map((v) => v.version).sort((a, b) => a - b);
  return {
    describe,
    chunks: { readInto: (hex, buf, offset) => remote.readChunkInto(hex, buf, offset), readsInFlight: remote.maxInFlight, readsAnywhere: true },
    listGuestIds: () => remote.listGuests(),
    listVersionNumbers,
    readManifest: async (guestId, version) => checkNamed(await remote.getManifest(guestId, version), guestId, version, describe),
    readIndex: (guestId, version, name) => remote.getIndex(guestId, version, name),
    versionGone: (guestId, version) =>
      listVersionNumbers(guestId).then(
        (numbers) => !numbers.includes(version),
        () => false,
      ),
    lease: (guestId, version) => remote.leaseVersion(guestId, version),
    checkpoint: () => Promise.resolve(),
    close: () => remote.close(),
  };
}

/**
 * A datastore in an S3 bucket as a version source. Its read lease is a lock object under
 * `locks/read-<vmid>-<version>/` that prune respects (pipeline/s3-prune.ts); verify's quarantine
 * copies a damaged chunk object to `quarantine/` and leaves a heal marker, as it does for a missing
 * one (datastore/s3/s3-chunks.ts), so the next backup uploads it afresh; the restore's lock is the
 * caller's (this node's state dir).
 */
export function s3Source(store: S3Datastore): VersionSource {
  return {
    describe: `datastore '${store.dir}'`,
    chunks: { readInto: (hex, buf, offset) => store.chunks.readInto(hex, buf, offset), readsInFlight: 8, readsAnywhere: true },
    listGuestIds: () => store.listGuestIds(),
    listVersionNumbers: (guestId) => store.listVersionNumbers(guestId),
    readManifest: (guestId, version) => store.readManifest(guestId, version),
    readIndex: (guestId, version, name) => store.readIndex(guestId, version, name),
    versionGone: (guestId, version) =>
      store.listVersionNumbers(guestId).then(
        (numbers) => !numbers.includes(version),
        () => false,
      ),
    lease: (guestId, version, purpose) => store.locks.acquire({ name: `read-${guestId}-${version}`, shared: true, excludedBy: [], purpose, waitMs: 0 }),
    hold: async (guestId, version, purpose, whileFile) => {
      const held = await store.locks.acquire({ name: `read-${guestId}-${version}`, shared: true, excludedBy: [], purpose, waitMs: 0, whileFile });
      held.stopRefreshing();
      return held.key;
    },
    dropHold: (ref) => store.locks.drop(ref),
    checkpoint: () => Promise.resolve(),
    quarantine: (digest) => store.chunks.quarantine(digest),
    markMissing: (digest) => store.chunks.markForHealing(digest),
    close: () => store.close(),
  };
}

/** A manifest answered for guest `guestId` version `version` must name them (the node answered another version otherwise). */
function checkNamed(manifest: Manifest, guestId: string, version: number, where: string): Manifest {
  if (manifest.guestId === guestId && manifest.version === version) return manifest;
  throw new ColdvaultError(
    'MANIFEST_CORRUPT',
    `the manifest of version ${version} of guest ${guestId} in ${where} is that of version ${manifest.version} of guest ${manifest.guestId}`,
  );
}

/**
 * Datastore `store` on the node named `nodeName` in the config's `cluster.nodes` (its url, fingerprint
 * and token): CONFIG_INVALID naming the listed nodes when there is no such node.
 */
export function openRemoteSource(cluster: ClusterConfig | undefined, nodeName: string, store: string): VersionSource {
  return remoteSource(new RemoteStore(ringStoreOptions(cluster, nodeName, store)), nodeName);
}
