/**
 * Reading the datastore for a rebuild or a reconcile: one listing of guests/<id>/<version>, then the
 * manifests of the versions asked for, a bounded number at a time. A version whose manifest cannot be
 * read or decoded (or names another guest or version than its folder) is skipped and reported, never
 * fatal: the files stay the truth, and the next reconcile tries it again. A failed listing is fatal.
 */
import { ColdvaultError, describeError } from '../core/index.js';
import type { Manifest } from '../format/index.js';
import type { CatalogReader, SkippedVersion } from './types.js';

export interface VersionRef {
  guestId: string;
  version: number;
}

export interface LoadedVersion {
  manifest: Manifest;
  /** undefined when the reader cannot tell (no isProtected) */
  protected: boolean | undefined;
}

export interface LoadResult {
  loaded: LoadedVersion[];
  skipped: SkippedVersion[];
}

/** Manifests read at once: enough to hide latency on a network mount, few enough for a USB disk. */
const READ_CONCURRENCY = 8;

/** Every version folder in the datastore. */
export async function listVersions(reader: CatalogReader): Promise<VersionRef[]> {
  const refs: VersionRef[] = [];
  for (const guestId of await reader.listGuestIds()) {
    for (const version of await reader.listVersionNumbers(guestId)) refs.push({ guestId, version });
  }
  return refs;
}

/** Reads the manifests (and protected flags) of `refs`; never rejects for one bad version. */
export async function loadVersions(reader: CatalogReader, refs: VersionRef[]): Promise<LoadResult> {
  const result: LoadResult = { loaded: [], skipped: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < refs.length) {
      const ref = refs[next++] as VersionRef;
      const outcome = await loadOne(reader, ref);
      if ('error' in outcome) result.skipped.push(outcome);
      else result.loaded.push(outcome);
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, refs.length) }, worker));
  result.skipped.sort(byRef);
  return result;
}

async function loadOne(reader: CatalogReader, ref: VersionRef): Promise<LoadedVersion | SkippedVersion> {
  try {
    const manifest = await reader.readManifest(ref.guestId, ref.version);
    checkIdentity(manifest, ref);
    const isProtected = reader.isProtected ? await reader.isProtected(ref.guestId, ref.version) : undefined;
    return { manifest, protected: isProtected };
  } catch (err) {
    return { guestId: ref.guestId, version: ref.version, error: describeError(err) };
  }
}

function checkIdentity(manifest: Manifest, ref: VersionRef): void {
  if (manifest.guestId !== ref.guestId || manifest.version !== ref.version) {
    throw new ColdvaultError(
      'MANIFEST_CORRUPT',
      `manifest of guests/${ref.guestId}/${ref.version} names guest ${manifest.guestId} version ${manifest.version}`,
    );
  }
}

function byRef(a: VersionRef, b: VersionRef): number {
  return Number(a.guestId) - Number(b.guestId) || a.guestId.localeCompare(b.guestId) || a.version - b.version;
}
