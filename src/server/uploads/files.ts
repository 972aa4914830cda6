/**
 * The files of a pushed version besides its manifest (which comes with finish): the guest config,
 * the disks' fixed indexes and the version log, under the datastore's own names, each with a size
 * limit. An index is checked when it arrives: it decodes, fits the store's chunk size, and every
 * chunk it names is in the store (a folder touches them now: the gc rule, see index.ts).
 */
import { ColdvaultError, MiB } from '../../core/index.js';
import {
  decodeFixedIndex,
  DIGEST_SIZE,
  INDEX_HEADER_SIZE,
  INDEX_SUFFIX,
  MANIFEST_FILE,
  VERSION_CONFIG_FILE,
  VERSION_LOG_FILE,
  type FixedIndex,
} from '../../format/index.js';

export type FileKind = 'config' | 'log' | 'index';

/** An index of at most 2 Mi chunks: disks up to 8 TiB. */
export const MAX_INDEX_BYTES = INDEX_HEADER_SIZE + DIGEST_SIZE * 2 ** 21;
const LIMITS: Record<FileKind, number> = { config: MiB, log: 16 * MiB, index: MAX_INDEX_BYTES };

/** What PUT .../files/:name accepts: the config, the log, `<disk key>.fidx`. */
export const PUSHED_FILE_PATTERN = `^(${escape(VERSION_CONFIG_FILE)}|${escape(VERSION_LOG_FILE)}|[A-Za-z0-9_][A-Za-z0-9_-]{0,63}${escape(INDEX_SUFFIX)})$`;
/** What a reader may fetch of a version: those and the manifest. */
export const VERSION_FILE_PATTERN = `^(${escape(MANIFEST_FILE)}|${PUSHED_FILE_PATTERN.slice(2, -2)})$`;

function escape(name: string): string {
  return name.replace(/\./g, '\\.');
}

export function fileKind(name: string): FileKind {
  if (!new RegExp(PUSHED_FILE_PATTERN).test(name)) {
    throw new ColdvaultError(
      'USAGE',
      `'${name}' is not a file of a version an upload may carry (${VERSION_CONFIG_FILE}, ${VERSION_LOG_FILE}, <disk>${INDEX_SUFFIX})`,
    );
  }
  if (name === VERSION_CONFIG_FILE) return 'config';
  return name === VERSION_LOG_FILE ? 'log' : 'index';
}

/** Refuses a file over its kind's limit (PAYLOAD_TOO_LARGE is the server's: the caller maps it). */
export function fileLimit(kind: FileKind): number {
  return LIMITS[kind];
}

/**
 * Decodes a pushed index and checks its chunk size (`chunkSize`, the store's); `absent` answers which
 * of the chunks it names the store lacks (a folder touches the others): CHUNK_MISSING naming them.
 */
export async function checkPushedIndex(
  name: string,
  data: Buffer,
  chunkSize: number,
  absent: (digests: Set<string>) => Promise<string[]>,
): Promise<FixedIndex> {
  const index = decodePushedIndex(name, data);
  if (index.chunkSize !== chunkSize) {
    throw new ColdvaultError('INDEX_INVALID', `index ${name} uses chunks of ${index.chunkSize} bytes; this datastore's are ${chunkSize}`);
  }
  const digests = new Set(index.digests.flatMap((d) => (d ? [d.toString('hex')] : [])));
  const missing = await absent(digests);
  if (missing.length > 0) throw chunksMissing(`index ${name} names`, missing);
  return index;
}

function decodePushedIndex(name: string, data: Buffer): FixedIndex {
  try {
    return decodeFixedIndex(data, name);
  } catch (err) {
    throw new ColdvaultError('INDEX_INVALID', `pushed ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** CHUNK_MISSING: `what` names chunks the store lacks (the first few named, all counted). */
export function chunksMissing(what: string, missing: readonly string[]): ColdvaultError {
  const shown = missing.slice(0, 3).join(', ');
  return new ColdvaultError(
    'CHUNK_MISSING',
    `${what} ${missing.length} chunk(s) the datastore does not have (${shown}${missing.length > 3 ? ', ...' : ''}); send them (PUT .../chunks/<digest>), then this again`,
  );
}
