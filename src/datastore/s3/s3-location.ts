/**
 * Where an S3 datastore is: `s3://BUCKET/PREFIX` at an endpoint, and the keys of everything in it.
 * Keys mirror the folder datastore's paths under the prefix, so one reading of the format serves both.
 */
import { ColdvaultError } from '../../core/index.js';
import type { Credentials } from '../../targets/index.js';

export interface S3StoreSettings {
  endpoint: string;
  region: string;
  bucket: string;
  /** '' or a path ending in '/' */
  prefix: string;
  pathStyle: boolean;
  credentials: Credentials;
}

export const S3_SCHEME = 's3://';

export function isS3Url(value: string): boolean {
  return value.startsWith(S3_SCHEME);
}

/** `s3://bucket/some/prefix` -> bucket and prefix (`some/prefix/`); USAGE naming what is wrong. */
export function parseS3Url(value: string): { bucket: string; prefix: string } {
  if (!isS3Url(value)) throw new ColdvaultError('USAGE', `'${value}' is not an s3:// address (s3://BUCKET/PREFIX)`);
  const rest = value.slice(S3_SCHEME.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes('..')) {
    throw new ColdvaultError('USAGE', `'${value}': '${bucket}' is not a valid bucket name (3 to 63 lower-case letters, digits, dots and hyphens)`);
  }
  if (path.split('/').some((part) => part === '' || part === '.' || part === '..') && path !== '') {
    throw new ColdvaultError('USAGE', `'${value}': the prefix '${path}' has an empty, '.' or '..' part`);
  }
  return { bucket, prefix: path === '' ? '' : `${path}/` };
}

/** The keys of a datastore under `prefix`. */
export class S3Keys {
  constructor(readonly prefix: string) {}

  identity(): string {
    return `${this.prefix}coldvault-datastore.json`;
  }

  chunk(hex: string): string {
    return `${this.prefix}chunks/${hex.slice(0, 4)}/${hex}`;
  }

  chunks(): string {
    return `${this.prefix}chunks/`;
  }

  /** a damaged chunk's bytes as verify found them, kept aside (`<hex>.<ms>`, as a folder's quarantine/) */
  quarantined(hex: string, ms: number): string {
    return `${this.prefix}quarantine/${hex}.${ms}`;
  }

  /** a marker: verify found this chunk damaged or missing, the next backup that has its data writes it afresh */
  heal(hex: string): string {
    return `${this.heals()}${hex}`;
  }

  heals(): string {
    return `${this.prefix}heal/`;
  }

  guests(): string {
    return `${this.prefix}guests/`;
  }

  guest(guestId: string): string {
    return `${this.prefix}guests/${guestId}/`;
  }

  version(guestId: string, version: number): string {
    return `${this.guest(guestId)}${version}/`;
  }

  file(guestId: string, version: number, name: string): string {
    return `${this.version(guestId, version)}${name}`;
  }

  /** the id of the last gc that started: a backup held up while one ran refuses to publish (s3-gc.ts) */
  gcGeneration(): string {
    return `${this.prefix}gc-generation`;
  }

  lastVersion(guestId: string): string {
    return `${this.guest(guestId)}last-version`;
  }
}
