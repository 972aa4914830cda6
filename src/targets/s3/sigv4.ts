/**
 * AWS Signature Version 4 for S3 requests (header-signed; no presigned URLs, no chunked signing).
 * One function of the request's parts, so it is tested against AWS's published example and used by
 * every request the S3 client sends. The signing key depends on the day, region and service only,
 * so it is derived once per day (and per secret), not per request.
 */
import { createHash, createHmac } from 'node:crypto';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface SignableRequest {
  method: string;
  /** the path as sent, already percent-encoded (uriPath does that) */
  path: string;
  /** query parameters, unencoded; a parameter without a value is '' */
  query: Record<string, string>;
  /** header names in any case; host must be among them */
  headers: Record<string, string>;
  /** hex SHA-256 of the body, or 'UNSIGNED-PAYLOAD' */
  payloadHash: string;
}

export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** RFC 3986 percent-encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ (and '/' when `keepSlash`). */
export function awsEncode(text: string, keepSlash = false): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The request path of `key` in `bucket`, path-style (`/bucket/key`), encoded once. */
export function uriPath(bucket: string, key = ''): string {
  return `/${awsEncode(bucket)}${key === '' ? '' : `/${awsEncode(key, true)}`}`;
}

/** The query string as sent and as signed: sorted by name, names and values encoded. */
export function canonicalQuery(query: Record<string, string>): string {
  return Object.keys(query)
    .sort()
    .map((k) => `${awsEncode(k)}=${awsEncode(query[k] ?? '')}`)
    .join('&');
}

/** `20130524T000000Z` for a date */
export function amzDate(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

const sha256Hex = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();

/** The signing key of one day, region and service, kept for the next requests of that day. */
class SigningKeys {
  private last?: { id: string; key: Buffer };

  get(secret: string, day: string, region: string, service: string): Buffer {
    const id = `${secret}\n${day}\n${region}\n${service}`;
    if (this.last?.id !== id) {
      const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
      this.last = { id, key };
    }
    return this.last.key;
  }
}

const keys = new SigningKeys();

/**
 * The Authorization header of `request` at `date` (the caller sends x-amz-date = amzDate(date) and
 * x-amz-content-sha256 = payloadHash among the headers, so they are signed).
 */
export function authorization(request: SignableRequest, credentials: Credentials, region: string, date: Date, service = 's3'): string {
  const stamp = amzDate(date);
  const day = stamp.slice(0, 8);
  const names = Object.keys(request.headers)
    .map((h) => h.toLowerCase())
    .sort();
  const lower = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const canonicalHeaders = names.map((h) => `${h}:${String(lower[h]).trim().replace(/\s+/g, ' ')}\n`).join('');
  const signedHeaders = names.join(';');
  const canonical = [request.method, request.path, canonicalQuery(request.query), canonicalHeaders, signedHeaders, request.payloadHash].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', stamp, scope, sha256Hex(canonical)].join('\n');
  const signature = createHmac('sha256', keys.get(credentials.secretAccessKey, day, region, service))
    .update(toSign)
    .digest('hex');
  return `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
}

export { sha256Hex };
