/**
 * `--store s3://BUCKET/PREFIX --endpoint URL [--region R] [--path-style true|false]` of the commands
 * that work on a datastore. Credentials come from the environment, as for every S3 tool:
 * AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (never from an argument: a command line is visible to
 * every user of the machine). Without --endpoint: AWS_ENDPOINT_URL, else AWS S3 of the region
 * (virtual-hosted addressing); with one, path-style addressing (Ceph RGW, MinIO) unless told otherwise.
 */
import { ColdvaultError } from '../core/index.js';
import { isS3Url, parseS3Url, type S3StoreSettings } from '../datastore/index.js';
import { type OptionSpec, type Parsed, str } from './args.js';
import { configuredS3Settings, type S3DatastoreConfig } from './s3-config.js';

export const s3Options: OptionSpec = {
  endpoint: { type: 'string' },
  region: { type: 'string' },
  'path-style': { type: 'string' },
};

export const S3_HELP = `  --store s3://BUCKET/PREFIX --endpoint URL [--region R] [--path-style true|false]: a datastore in an S3
  bucket (Ceph RGW, MinIO, AWS S3); credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.`;

/** The S3 settings of `--store` when it is an s3:// address or a configured S3 datastore's name, else undefined. */
export function s3StoreSettings(
  args: Parsed,
  configured: Record<string, S3DatastoreConfig> = {},
  env: NodeJS.ProcessEnv = process.env,
): S3StoreSettings | undefined {
  const store = str(args, 'store');
  const named = store === undefined || !Object.hasOwn(configured, store) ? undefined : configured[store];
  const flag = givenS3Flags(args)[0];
  if (named && store !== undefined) {
    if (flag) throw new ColdvaultError('USAGE', `--${flag}: datastore '${store}' is configured with its own (config file)`);
    return configuredS3Settings(store, named, env);
  }
  if (store === undefined || !isS3Url(store)) {
    if (flag) throw new ColdvaultError('USAGE', `--${flag} goes with --store s3://BUCKET/PREFIX`);
    return undefined;
  }
  return s3UrlSettings(store, args, env);
}

/** Which of --endpoint, --region and --path-style were given. */
export function givenS3Flags(args: Parsed): string[] {
  return Object.keys(s3Options).filter((name) => str(args, name) !== undefined);
}

/** The settings of address `url` (s3://BUCKET/PREFIX) with --endpoint, --region and --path-style; USAGE naming what is wrong. */
export function s3UrlSettings(url: string, args: Parsed, env: NodeJS.ProcessEnv = process.env): S3StoreSettings {
  const { bucket, prefix } = parseS3Url(url);
  const region = str(args, 'region') ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const given = str(args, 'endpoint') ?? env.AWS_ENDPOINT_URL;
  const endpoint = given ?? `https://s3.${region}.amazonaws.com`;
  checkEndpoint(endpoint);
  return { endpoint, region, bucket, prefix, pathStyle: pathStyle(str(args, 'path-style'), given !== undefined), credentials: credentialsFrom(env) };
}

function checkEndpoint(endpoint: string): void {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ColdvaultError('USAGE', `--endpoint '${endpoint}' is not a URL (http://host:port or https://host)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ColdvaultError('USAGE', `--endpoint '${endpoint}': expected http:// or https://`);
  if (url.pathname !== '/' || url.search)
    throw new ColdvaultError('USAGE', `--endpoint '${endpoint}': name the service only (no path); the bucket goes in --store s3://BUCKET`);
}

function pathStyle(value: string | undefined, customEndpoint: boolean): boolean {
  if (value === undefined) return customEndpoint;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new ColdvaultError('USAGE', `--path-style '${value}': expected true or false`);
}

function credentialsFrom(env: NodeJS.ProcessEnv): S3StoreSettings['credentials'] {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new ColdvaultError('USAGE', 'an s3:// datastore needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment');
  }
  return { accessKeyId, secretAccessKey };
}
