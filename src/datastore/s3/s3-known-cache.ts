/**
 * This machine's known-chunk cache of an S3 datastore (as PBS keeps a client-side list of known chunks):
 * the chunks the versions this machine published in the bucket name, so that a backup dedups against
 * every guest's data, not only the guest's own newest version, without a request per chunk. A first
 * backup of a cloned guest uploads nothing its twin stored.
 *
 * Why a cached chunk is still there when a backup trusts it: only gc deletes chunks, and gc writes a
 * new `gc-generation` before it marks (s3-gc.ts). The cache records the generation a backup read
 * after it registered as a writer; a backup trusts the cache only when the generation it reads after
 * its own registration is the same, i.e. no gc has started since any cached chunk was known stored
 * (and none can start while it stays registered: index.ts points 2 and 4; a held-up backup whose
 * registration lapsed finds another generation at its publish and refuses it). Another generation:
 * the cache is dropped and refilled. Chunks removed otherwise (through the S3 API, by hand) are what
 * the previous version's index would claim too: verify finds them missing and marks them, and the
 * next backup uploads them afresh (heal markers, s3-chunks.ts), which also keeps them from the cache's trust.
 *
 * File `<catalog cache>.known-chunks` in the state dir (private to its owner), written whole under a
 * temp name and renamed: one JSON line {coldvault, datastore, generation, count}, then `count` raw
 * 32-byte digests. Anything unreadable or not matching is ignored (uploads cost, correctness does not).
 * At most MAX_KNOWN digests (the newest version's first), so memory stays bounded.
 */
import { readFile, unlink } from 'node:fs/promises';
import { errnoCode } from '../../core/index.js';
import { writeFileDurable } from '../durable.js';

/** 262,144 digests: 1 TiB of distinct 4 MiB chunks, about 30 MiB of memory as a set */
export const MAX_KNOWN = 262_144;
const DIGEST_BYTES = 32;
const MAGIC = 'known-chunks';

interface Header {
  coldvault: string;
  datastore: string;
  generation: string;
  count: number;
}

export type LoadedCache = { trusted: true; digests: string[] } | { trusted: false; why: 'none' | 'unreadable' | 'gc-ran' };

/** The cached digests when the file is this datastore's at gc generation `generation`; a stale file is removed. */
export async function loadKnownChunks(file: string, datastoreId: string, generation: string): Promise<LoadedCache> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    return { trusted: false, why: errnoCode(err) === 'ENOENT' ? 'none' : 'unreadable' };
  }
  const header = parseHeader(data);
  if (!header || header.datastore !== datastoreId) return { trusted: false, why: 'unreadable' };
  if (header.generation !== generation) {
    await unlink(file).catch(() => undefined);
    return { trusted: false, why: 'gc-ran' };
  }
  const body = data.subarray(data.indexOf(10) + 1);
  if (body.length !== header.count * DIGEST_BYTES) return { trusted: false, why: 'unreadable' };
  const digests: string[] = [];
  for (let at = 0; at < body.length; at += DIGEST_BYTES) digests.push(body.toString('hex', at, at + DIGEST_BYTES));
  return { trusted: true, digests };
}

/** Writes the cache: `first` (the version just published), then `rest`, up to MAX_KNOWN distinct digests. */
export async function saveKnownChunks(file: string, datastoreId: string, generation: string, first: Iterable<string>, rest: Iterable<string>): Promise<number> {
  const kept = new Set<string>();
  for (const list of [first, rest]) {
    for (const hex of list) {
      if (kept.size >= MAX_KNOWN) break;
      kept.add(hex);
    }
  }
  const header: Header = { coldvault: MAGIC, datastore: datastoreId, generation, count: kept.size };
  const head = Buffer.from(`${JSON.stringify(header)}\n`);
  const data = Buffer.alloc(head.length + kept.size * DIGEST_BYTES);
  head.copy(data);
  let at = head.length;
  for (const hex of kept) at += data.write(hex, at, 'hex');
  await writeFileDurable(file, data, { dataOnly: true, doing: `writing the known-chunk cache '${file}'` });
  return kept.size;
}

function parseHeader(data: Buffer): Header | undefined {
  const end = data.indexOf(10);
  if (end < 0 || end > 4096) return undefined;
  try {
    const h = JSON.parse(data.toString('utf8', 0, end)) as Partial<Header>;
    const ok = h.coldvault === MAGIC && typeof h.datastore === 'string' && typeof h.generation === 'string' && Number.isInteger(h.count);
    return ok ? (h as Header) : undefined;
  } catch {
    return undefined;
  }
}
