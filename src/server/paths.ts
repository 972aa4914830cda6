/**
 * Paths in requests never escape what the config and the jobs name. A store is a configured
 * datastore's name or exactly the folder of a configured datastore or of an existing job, or exactly
 * the `s3://BUCKET/PREFIX/` of a configured S3 datastore (never another endpoint or bucket: the API
 * reaches only the buckets the config names, with the config's credentials); a script is
 * a file inside one of `scriptDirs` (default /etc/coldvault) or one an existing job already runs; a
 * device is under /dev. Relative paths and `..` segments are refused before anything is resolved.
 * A job's key file and passphrase file (`encrypt`, checkKeyPath) lie inside one of `keyDirs` (default
 * /etc/coldvault/keys) both as written and with symlinks resolved, or are exactly what the job has.
 * Every refusal is PATH_NOT_ALLOWED (400).
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { errnoCode } from '../core/index.js';
import type { Job, JobStore } from '../jobs/index.js';
import { DEFAULT_KEY_DIRS, DEFAULT_SCRIPT_DIRS, type ServerConfig } from './deps.js';
import { ApiError } from './errors.js';

export interface KnownStore {
  /** the configured name, else `job:<id>` of the first job writing there */
  name: string;
  /** the folder; for an S3 datastore its `s3://BUCKET/PREFIX/` */
  dir: string;
  /** 's3': a configured S3 datastore (opened by name with the config's credentials); absent: a folder */
  kind?: 's3';
}

/** Configured datastores (folders, then S3 ones), then the stores of jobs, one entry per folder or bucket prefix. */
export function knownStores(config: ServerConfig, jobs: JobStore): KnownStore[] {
  const byDir = new Map<string, KnownStore>();
  for (const [name, dir] of Object.entries(config.datastores)) if (!byDir.has(resolve(dir))) byDir.set(resolve(dir), { name, dir: resolve(dir) });
  for (const s of s3Stores(config)) if (!byDir.has(s.dir)) byDir.set(s.dir, s);
  for (const job of jobs.list()) {
    if (job.mode === 'cluster' || isS3Name(config, job.store)) continue; // a store of another node, or a configured bucket
    if (!byDir.has(resolve(job.store))) byDir.set(resolve(job.store), { name: `job:${job.id}`, dir: resolve(job.store) });
  }
  return [...byDir.values()];
}

function s3Stores(config: ServerConfig): KnownStore[] {
  return Object.entries(config.s3StoreUrls ?? {}).map(([name, dir]) => ({ name, dir, kind: 's3' as const }));
}

const isS3Name = (config: ServerConfig, value: string): boolean => Object.hasOwn(config.s3StoreUrls ?? {}, value);

function checkedAbsolute(value: string, what: string): string {
  if (!value.startsWith('/') || value.split('/').includes('..') || value.includes('\0')) {
    throw new ApiError('PATH_NOT_ALLOWED', `${what} '${value}' must be an absolute path without '..'`);
  }
  return resolve(value);
}

/** A store given by name, folder or configured S3 address -> the known store; PATH_NOT_ALLOWED for anything else. */
export function resolveStore(value: string, config: ServerConfig, jobs: JobStore): KnownStore {
  if (Object.hasOwn(config.datastores, value)) return { name: value, dir: resolve(config.datastores[value] as string) };
  const s3 = s3Stores(config).find((s) => s.name === value || s.dir === value || s.dir === `${value}/`);
  if (s3) return s3;
  const dir = checkedAbsolute(value, 'store');
  const known = knownStores(config, jobs);
  const found = known.find((s) => s.dir === dir);
  if (found) return found;
  throw new ApiError(
    'PATH_NOT_ALLOWED',
    `store '${value}' is neither a configured datastore (${known.map((s) => s.name).join(', ') || 'none'}) nor the store of a job`,
  );
}

/** A store that must be a folder (an external disk is mounted on it): PATH_NOT_ALLOWED naming an S3 datastore. */
export function resolveFolderStore(value: string, config: ServerConfig, jobs: JobStore, what: string): string {
  const store = resolveStore(value, config, jobs);
  if (store.kind === 's3') throw new ApiError('PATH_NOT_ALLOWED', `${what}: store '${value}' is an S3 datastore (${store.dir}); this needs a folder`);
  return store.dir;
}

/** A store as sent (name, folder or S3 address) -> the name a grant is scoped by: the configured datastore's name
 * for its name, folder or address, `job:<id>` for a job's folder; anything else unchanged (a route refuses it). */
export function storeName(value: string, config: ServerConfig, jobs: JobStore): string {
  const s3 = s3Stores(config).find((s) => s.dir === value || s.dir === `${value}/`);
  if (s3) return s3.name;
  if (Object.hasOwn(config.datastores, value) || !value.startsWith('/') || value.split('/').includes('..')) return value;
  return knownStores(config, jobs).find((s) => s.dir === resolve(value))?.name ?? value;
}

/** A hook / script path the API may set; empty values pass (no script). */
export function checkScript(value: string | undefined, what: string, config: ServerConfig, jobs: Job[]): void {
  if (!value) return;
  const path = checkedAbsolute(value, what);
  const dirs = (config.scriptDirs ?? DEFAULT_SCRIPT_DIRS).map((d) => resolve(d));
  if (dirs.some((d) => path.startsWith(d + sep))) return;
  if (jobs.some((j) => [j.hook, j.scriptBefore, j.scriptAfter].includes(path))) return;
  throw new ApiError('PATH_NOT_ALLOWED', `${what} '${value}' is not inside the script folders (${dirs.join(', ')}; config key scriptDirs)`);
}

/**
 * A key file or passphrase file path the API may set as a job's `encrypt` (`what` names the field);
 * undefined for an empty value. Allowed: exactly the path the job already has (`current`: set before,
 * perhaps by root with the CLI), or an absolute path without `..` inside one of `keyDirs`, both as
 * written and with its symlinks resolved (realpath of the file, or of its nearest existing folder
 * when it does not exist yet; the key folders resolved the same way). Never reads the file.
 */
export function checkKeyPath(value: string | undefined, what: string, config: ServerConfig, current?: string): string | undefined {
  if (!value) return undefined;
  if (value === current) return value;
  const path = checkedAbsolute(value, what);
  const dirs = (config.keyDirs ?? DEFAULT_KEY_DIRS).map((d) => resolve(d));
  const written = dirs.filter((d) => path.startsWith(d + sep));
  const where = `the key folders (${dirs.join(', ')}; config key keyDirs)`;
  if (written.length === 0) throw new ApiError('PATH_NOT_ALLOWED', `${what} '${value}' is not inside ${where}`);
  const real = realPath(path, what);
  if (!written.some((d) => real.startsWith(realPath(d, 'keyDirs') + sep))) {
    throw new ApiError('PATH_NOT_ALLOWED', `${what} '${value}' leads out of ${where} through a symlink`);
  }
  return path;
}

/** The path with its symlinks resolved, as far as it exists (the part that does not exist yet appended). */
function realPath(path: string, what: string): string {
  const missing: string[] = [];
  for (let at = path; ; at = dirname(at)) {
    try {
      return join(realpathSync(at), ...missing);
    } catch (err) {
      if (!['ENOENT', 'ENOTDIR'].includes(errnoCode(err) ?? '') || at === '/') {
        throw new ApiError('PATH_NOT_ALLOWED', `${what} '${path}' cannot be resolved: ${errnoCode(err) ?? 'error'}`, { cause: err });
      }
      missing.unshift(basename(at));
    }
  }
}

/** One disk, or several rotated disks separated by commas: each /dev/..., UUID=... or LABEL=... */
export function checkDevice(value: string | undefined): void {
  if (!value) return;
  for (const spec of value.split(',').map((d) => d.trim())) {
    if (/^(UUID|LABEL)=[^/\0,]{1,128}$/.test(spec)) continue; // resolved through lsblk / blkid, never a path
    const path = checkedAbsolute(spec, 'device');
    if (!path.startsWith('/dev/')) throw new ApiError('PATH_NOT_ALLOWED', `device '${spec}' must be under /dev`);
  }
}
