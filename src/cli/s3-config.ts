/**
 * S3 datastores in the config file, by name, beside the folders:
 *   "datastores": { "usb1": "/mnt/usb1",
 *                   "offsite": { "type": "s3", "endpoint": "http://rgw.lan:7480", "bucket": "backups",
 *                                "prefix": "pve1", "region": "us-east-1", "accessKeyId": "...",
 *                                "secretAccessKeyFile": "/etc/coldvault/s3-secret", "pathStyle": true } }
 * `--store offsite` then means that bucket. The secret lives in a file of its own that only its owner
 * may read (refused otherwise), never in the config; without accessKeyId / secretAccessKeyFile the
 * usual AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment is used.
 */
import { readFileSync, statSync } from 'node:fs';
import { ColdvaultError } from '../core/index.js';
import { parseS3Url, type S3StoreSettings } from '../datastore/index.js';

export interface S3DatastoreConfig {
  type: 's3';
  endpoint?: string;
  bucket: string;
  prefix?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKeyFile?: string;
  pathStyle?: boolean;
}

const FIELDS: Record<keyof S3DatastoreConfig, 'string' | 'boolean'> = {
  type: 'string',
  endpoint: 'string',
  bucket: 'string',
  prefix: 'string',
  region: 'string',
  accessKeyId: 'string',
  secretAccessKeyFile: 'string',
  pathStyle: 'boolean',
};

/** Checks one `datastores` entry that is an object: CONFIG_INVALID naming the datastore and the field. */
export function checkS3Datastore(name: string, value: unknown, file: string): S3DatastoreConfig {
  const where = `config file '${file}': datastore '${name}'`;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ColdvaultError('CONFIG_INVALID', `${where} must be a folder path or an object`);
  const entry = value as Record<string, unknown>;
  if (entry.type !== 's3') throw new ColdvaultError('CONFIG_INVALID', `${where}: "type" must be "s3" (a folder is given as its path)`);
  for (const [key, v] of Object.entries(entry)) {
    const kind = FIELDS[key as keyof S3DatastoreConfig];
    if (!kind) throw new ColdvaultError('CONFIG_INVALID', `${where}: unknown field '${key}' (${Object.keys(FIELDS).join(', ')})`);
    if (typeof v !== kind) throw new ColdvaultError('CONFIG_INVALID', `${where}: '${key}' must be a ${kind}`);
  }
  if (typeof entry.bucket !== 'string') throw new ColdvaultError('CONFIG_INVALID', `${where}: 'bucket' is missing`);
  if (entry.secretAccessKeyFile !== undefined && !(entry.secretAccessKeyFile as string).startsWith('/')) {
    throw new ColdvaultError('CONFIG_INVALID', `${where}: 'secretAccessKeyFile' must be an absolute path`);
  }
  parseS3Url(`s3://${entry.bucket}/${(entry.prefix as string | undefined) ?? ''}`); // the bucket name and prefix rules
  return entry as unknown as S3DatastoreConfig;
}

/** The settings of configured S3 datastore `name` (credentials read now). */
export function configuredS3Settings(name: string, c: S3DatastoreConfig, env: NodeJS.ProcessEnv): S3StoreSettings {
  const { bucket, prefix } = parseS3Url(`s3://${c.bucket}/${c.prefix ?? ''}`);
  const region = c.region ?? env.AWS_REGION ?? 'us-east-1';
  const endpoint = c.endpoint ?? `https://s3.${region}.amazonaws.com`;
  const accessKeyId = c.accessKeyId ?? env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = c.secretAccessKeyFile ? readSecret(name, c.secretAccessKeyFile) : env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new ColdvaultError(
      'CONFIG_INVALID',
      `datastore '${name}' has no credentials: give accessKeyId and secretAccessKeyFile in the config, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
    );
  }
  return { endpoint, region, bucket, prefix, pathStyle: c.pathStyle ?? c.endpoint !== undefined, credentials: { accessKeyId, secretAccessKey } };
}

function readSecret(name: string, path: string): string {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    throw new ColdvaultError('CONFIG_INVALID', `datastore '${name}': secretAccessKeyFile '${path}' cannot be read`, { cause: err });
  }
  if ((mode & 0o077) !== 0) {
    throw new ColdvaultError(
      'CONFIG_INVALID',
      `datastore '${name}': secretAccessKeyFile '${path}' may be read by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it`,
    );
  }
  const secret = readFileSync(path, 'utf8').trim();
  if (!secret) throw new ColdvaultError('CONFIG_INVALID', `datastore '${name}': secretAccessKeyFile '${path}' is empty`);
  return secret;
}

/** A resolver of configured S3 datastores by name, for the job runner (credentials read when a job opens one). */
export function s3StoresOf(
  config: { s3Datastores: Record<string, S3DatastoreConfig> },
  env: NodeJS.ProcessEnv = process.env,
): (name: string) => S3StoreSettings | undefined {
  return (name) => (Object.hasOwn(config.s3Datastores, name) ? configuredS3Settings(name, config.s3Datastores[name] as S3DatastoreConfig, env) : undefined);
}

/** The configured S3 datastores by name -> `s3://BUCKET/PREFIX/`, for listings (no credentials read). */
export function s3StoreUrlsOf(config: { s3Datastores: Record<string, S3DatastoreConfig> }): Record<string, string> {
  const urls: Record<string, string> = {};
  for (const [name, c] of Object.entries(config.s3Datastores)) urls[name] = `s3://${c.bucket}/${parseS3Url(`s3://${c.bucket}/${c.prefix ?? ''}`).prefix}`;
  return urls;
}
