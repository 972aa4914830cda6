/**
 * `datastore undelete`: makes visible again what a DELETE without a version id hid in an Object Lock
 * bucket. There such a DELETE (by anyone with the bucket's keys, through any S3 tool) cannot remove a
 * retained object version; it only puts a delete marker on top, and the version's manifest (or a
 * chunk) then looks gone. Removing the marker by its version id brings the object back; the service
 * allows that (a marker has no retention).
 *
 * Only markers that hide a version still under retention are removed: a version coldvault pruned or
 * gc collected lost every object version by version id after its retention (no marker is left), and
 * a key whose newest hidden version's retention is over is left alone, so nothing pruned on purpose
 * comes back. Lock objects (locks/) and heal markers (heal/) are never brought back, nor a chunk
 * verify moved aside (a heal marker names it). The catalog cache picks the versions up when it is
 * next opened (it reconciles against the manifests).
 */
import type { S3Client } from '../../targets/index.js';
import type { S3Keys } from './s3-location.js';
import { retained } from './s3-retention.js';

export interface Undeleted {
  /** keys made visible again */
  keys: string[];
  /** hidden keys left hidden: their newest version is no longer retained */
  leftHidden: string[];
}

interface KeyState {
  marker?: string;
  hidden: Array<{ versionId: string; lastModified: Date }>;
}

/** Removes the delete markers that hide retained versions under the datastore's prefix; `dryRun`: only says which. */
export async function undeleteRetained(client: S3Client, keys: S3Keys, options: { dryRun?: boolean; healing?: ReadonlySet<string> } = {}): Promise<Undeleted> {
  const hiddenKeys = await hiddenByMarkers(client, keys);
  const now = await client.serverTime();
  const out: Undeleted = { keys: [], leftHidden: [] };
  for (const [key, state] of hiddenKeys) {
    if (skipped(key, keys, options.healing) || state.hidden.length === 0 || !state.marker) continue;
    const newest = state.hidden.reduce((a, b) => (b.lastModified > a.lastModified ? b : a));
    const head = await client.head(key, newest.versionId);
    if (!head || !retained(head.retainUntil, now)) {
      out.leftHidden.push(key);
      continue;
    }
    if (!options.dryRun) await client.delete(key, state.marker);
    out.keys.push(key);
  }
  return out;
}

/** The keys whose current version is a delete marker, with the marker and the versions under it. */
async function hiddenByMarkers(client: S3Client, keys: S3Keys): Promise<Map<string, KeyState>> {
  const states = new Map<string, KeyState>();
  const stateOf = (key: string): KeyState => {
    let s = states.get(key);
    if (!s) states.set(key, (s = { hidden: [] }));
    return s;
  };
  for await (const v of client.listVersions(keys.prefix)) {
    if (v.deleteMarker && v.latest) stateOf(v.key).marker = v.versionId;
    else if (!v.deleteMarker) stateOf(v.key).hidden.push({ versionId: v.versionId, lastModified: v.lastModified });
  }
  for (const [key, s] of states) if (!s.marker) states.delete(key);
  return states;
}

function skipped(key: string, keys: S3Keys, healing: ReadonlySet<string> | undefined): boolean {
  const rest = key.slice(keys.prefix.length);
  if (rest.startsWith('locks/') || rest.startsWith('heal/')) return true;
  return rest.startsWith('chunks/') && healing?.has(rest.slice(rest.lastIndexOf('/') + 1)) === true;
}
