/**
 * The strict schema of a format-1 manifest (manifest.ts documents the fields). The checksum only
 * proves a manifest was not damaged; anyone who can write the store can compute it. So every decoded
 * manifest is also checked here: every field present and of its type, no field unknown to format 1,
 * numbers sane (sizes and counts non-negative safe integers, chunk counts matching the sizes), ids as
 * the engine writes them, and an index name that is a plain file name in the version folder (no path
 * separator, no `..`), so that no manifest makes verify or restore read outside its version folder.
 * Optional fields (added to format 1 later, so older manifests lack them) are checked when present.
 * A manifest this version wrote always passes: the rules are what backup.ts produces.
 */
import { isGuestId } from '../core/index.js';
import { DATASTORE_FORMAT, INDEX_SUFFIX, MAX_CHUNK_SIZE } from './constants.js';
import { chunkCountFor } from './fixed-index.js';

/** A manifest field that breaks the schema: `path` names it (`disks[1].index`). */
export class SchemaViolation extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path} ${problem}`);
  }
}

type Check = (value: unknown, path: string) => void;

const fail = (path: string, problem: string): never => {
  throw new SchemaViolation(path, problem);
};

const show = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

const string: Check = (v, path) => {
  if (typeof v !== 'string') fail(path, `must be a string, not ${show(v)}`);
};

const matching =
  (pattern: RegExp, what: string): Check =>
  (v, path) => {
    string(v, path);
    if (!pattern.test(v as string)) fail(path, `must be ${what}, not ${show(v)}`);
  };

const integer =
  (min: number, max = Number.MAX_SAFE_INTEGER): Check =>
  (v, path) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) fail(path, `must be an integer from ${min} to ${max}, not ${show(v)}`);
  };

/** A finite number (a duration: a clock stepped back during a backup may have made it negative). */
const finite: Check = (v, path) => {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, `must be a number, not ${show(v)}`);
};

const nullable =
  (check: Check): Check =>
  (v, path) => {
    if (v !== null) check(v, path);
  };

const arrayOf =
  (check: Check): Check =>
  (v, path) => {
    if (!Array.isArray(v)) fail(path, `must be an array, not ${show(v)}`);
    (v as unknown[]).forEach((item, i) => check(item, `${path}[${i}]`));
  };

/** An object with exactly these fields, and these optional ones when present (missing or extra ones are refused). */
const object =
  (shape: Record<string, Check>, optional: Record<string, Check> = {}): Check =>
  (v, path) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, `must be an object, not ${show(v)}`);
    const record = v as Record<string, unknown>;
    const at = (key: string): string => (path ? `${path}.${key}` : key);
    for (const key of Object.keys(record)) {
      if (!Object.hasOwn(shape, key) && !Object.hasOwn(optional, key)) fail(at(key), 'is not a field of a format-1 manifest');
    }
    for (const [key, check] of Object.entries(shape)) {
      if (!Object.hasOwn(record, key)) fail(at(key), 'is missing');
      check(record[key], at(key));
    }
    for (const [key, check] of Object.entries(optional)) if (Object.hasOwn(record, key)) check(record[key], at(key));
  };

/** A plain file name ending in .fidx: no '/', no '\', not '.' or '..', no leading dot. */
const INDEX_NAME = new RegExp(`^[A-Za-z0-9_][A-Za-z0-9_.-]*${INDEX_SUFFIX.replace('.', '\\.')}$`);
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

const indexName: Check = (v, path) => {
  matching(INDEX_NAME, `a file name in the version folder ending in ${INDEX_SUFFIX} (no path)`)(v, path);
  if ((v as string).includes('..')) fail(path, `must not contain '..', not ${show(v)}`);
};

const isoTime: Check = (v, path) => {
  matching(ISO_UTC, 'an ISO-8601 UTC time')(v, path);
  if (Number.isNaN(Date.parse(v as string))) fail(path, `must be a real date, not ${show(v)}`);
};

const bytes = integer(0);

const disk = object({
  key: matching(/^[a-z]+[0-9]+$/, 'a disk key such as scsi0'),
  volume: matching(/./, 'a volume (not empty)'),
  storage: nullable(matching(/./, 'a storage id (not empty) or null')),
  format: string, // as the config named it (restore only ever uses a format it knows)
  size: bytes,
  index: indexName,
  sha256: matching(/^[0-9a-f]{64}$/, '64 lowercase hex digits'),
  chunkSize: integer(1, MAX_CHUNK_SIZE),
  chunkCount: bytes,
  zeroChunks: bytes,
  zeroBytes: bytes,
});

const manifestFields: Record<string, Check> = {
  format: integer(1, DATASTORE_FORMAT),
  guestId: (v, path) => {
    string(v, path);
    if (!isGuestId(v as string)) fail(path, `must be a guest id from 100 to 999999999, not ${show(v)}`);
  },
  guestName: string,
  version: integer(1),
  time: isoTime,
  node: string,
  config: string,
  disks: arrayOf(disk),
  excluded: arrayOf(object({ key: string, volume: string, reason: string })),
  storedBytes: bytes,
  newBytes: bytes,
  durationSeconds: finite,
};

/** Fields format 1 gained later: a manifest written before lacks them. */
const encryption = object({
  fingerprint: matching(/^[0-9a-f]{2}(:[0-9a-f]{2}){15}$/, 'a key fingerprint (16 bytes, ab:cd:...)'),
  config: matching(/^[A-Za-z0-9+/]*={0,2}$/, 'base64'),
  mac: matching(/^[0-9a-f]{64}$/, '64 lowercase hex digits'),
});

const manifestShape = object(manifestFields, { downtimeMs: bytes, encryption });

interface DiskNumbers {
  key: string;
  size: number;
  index: string;
  chunkSize: number;
  chunkCount: number;
  zeroChunks: number;
  zeroBytes: number;
}

/** The rules between fields of one disk, and between disks. */
function checkDisks(disks: DiskNumbers[]): void {
  disks.forEach((d, i) => {
    const path = `disks[${i}]`;
    const expected = chunkCountFor(d.size, d.chunkSize);
    if (d.chunkCount !== expected) fail(`${path}.chunkCount`, `must be ${expected} for ${d.size} bytes in chunks of ${d.chunkSize}, not ${d.chunkCount}`);
    if (d.zeroChunks > d.chunkCount) fail(`${path}.zeroChunks`, `must be at most chunkCount (${d.chunkCount}), not ${d.zeroChunks}`);
    if (d.zeroBytes > d.size) fail(`${path}.zeroBytes`, `must be at most size (${d.size}), not ${d.zeroBytes}`);
  });
  unique(
    disks.map((d) => d.key),
    'key',
  );
  unique(
    disks.map((d) => d.index),
    'index',
  );
}

function unique(values: string[], field: string): void {
  values.forEach((v, i) => {
    if (values.indexOf(v) !== i) fail(`disks[${i}].${field}`, `must be unique, but ${show(v)} is also disks[${values.indexOf(v)}].${field}`);
  });
}

/** Throws SchemaViolation unless `value` is a format-1 manifest (checksum already removed). */
export function checkManifestSchema(value: unknown): void {
  manifestShape(value, '');
  checkDisks((value as { disks: DiskNumbers[] }).disks);
}
