/**
 * The S3 operations a datastore needs, on one endpoint and bucket, path-style by default (what Ceph
 * RGW and MinIO want; virtual-hosted style for AWS when `pathStyle: false`). Chosen over
 * @aws-sdk/client-s3 and minio by measurement (bench/s3-clients.mjs, bench/RESULTS.md block
 * `s3-clients`): it reads an object into the caller's buffer and keeps no middleware stack per request.
 *
 * Contracts: every call is idempotent and retried (s3-request.ts); `get` of a missing object is
 * S3_NOT_FOUND, `head` answers undefined; `delete` of a missing object succeeds (S3 semantics);
 * listings are strongly consistent on AWS S3 (since 2020) and on a single-site Ceph RGW, which the
 * datastore's gc rule relies on (see s3 datastore).
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Credentials } from './sigv4.js';
import { awsEncode, uriPath } from './sigv4.js';
import { DEFAULT_RETRY, makeAgent, type RetryPolicy, type S3Answer, type S3Call, type S3Connection, s3Request } from './s3-request.js';
import { S3Error } from './s3-errors.js';
import { decodeXmlText, xmlElement, xmlElements, xmlValue } from './xml.js';

export interface S3ClientOptions {
  endpoint: string;
  region: string;
  bucket: string;
  credentials: Credentials;
  /** path-style addressing (default); false: virtual-hosted (bucket.host) */
  pathStyle?: boolean;
  /** connections kept to the service, the bound of requests in flight (default 8) */
  maxSockets?: number;
  timeoutMs?: number;
  retry?: RetryPolicy;
}

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
  etag: string;
}

export interface ObjectVersion extends ObjectInfo {
  versionId: string;
  deleteMarker: boolean;
  /** the key's current version (a delete marker that is latest hides the key) */
  latest: boolean;
}

export interface ObjectHead {
  size: number;
  lastModified: Date;
  etag: string;
  versionId?: string;
  /** Object Lock retention of this version, when it has one */
  retainUntil?: Date;
  lockMode?: string;
  metadata: Record<string, string>;
}

export interface PutOptions {
  contentType?: string;
  /** sign the body's SHA-256 (small objects); default: unsigned payload */
  signBody?: boolean;
  /** Object Lock retention for this object (Content-MD5 is then sent, as S3 requires) */
  retention?: { mode: 'COMPLIANCE' | 'GOVERNANCE'; until: Date };
  /** x-amz-meta-* entries */
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}

export interface LockConfiguration {
  enabled: boolean;
  mode?: string;
  days?: number;
}

export class S3Client {
  readonly bucket: string;
  private readonly conn: S3Connection;
  private readonly pathStyle: boolean;

  constructor(options: S3ClientOptions) {
    this.bucket = options.bucket;
    this.pathStyle = options.pathStyle ?? true;
    const endpoint = new URL(this.pathStyle ? options.endpoint : virtualHost(options.endpoint, options.bucket));
    this.conn = {
      endpoint,
      region: options.region,
      credentials: options.credentials,
      retry: options.retry ?? DEFAULT_RETRY,
      timeoutMs: options.timeoutMs ?? 60_000,
      agent: makeAgent(endpoint, options.maxSockets ?? 8),
    };
  }

  /** `s3://bucket` at the endpoint, for messages */
  get where(): string {
    return `s3://${this.bucket} at ${this.conn.endpoint.origin}`;
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<{ etag: string; versionId?: string; date?: Date }> {
    const headers: Record<string, string> = { 'content-type': options.contentType ?? 'application/octet-stream' };
    for (const [k, v] of Object.entries(options.metadata ?? {})) headers[`x-amz-meta-${k}`] = v;
    if (options.retention) {
      headers['x-amz-object-lock-mode'] = options.retention.mode;
      headers['x-amz-object-lock-retain-until-date'] = options.retention.until.toISOString();
      headers['content-md5'] = createHash('md5').update(body).digest('base64');
    }
    const a = await this.call({
      method: 'PUT',
      path: this.path(key),
      headers,
      body,
      signBody: options.signBody,
      doing: `PUT of ${key}`,
      signal: options.signal,
    });
    return { etag: unquote(a.headers.etag), versionId: header(a.headers, 'x-amz-version-id'), date: dateHeader(a.headers) };
  }

  /** The object's bytes (into `into` when it fits); S3_NOT_FOUND when it is not there. */
  async get(key: string, options: { into?: Uint8Array; versionId?: string; signal?: AbortSignal } = {}): Promise<Buffer> {
    const query = options.versionId ? { versionId: options.versionId } : undefined;
    const a = await this.call({ method: 'GET', path: this.path(key), query, into: options.into, doing: `GET of ${key}`, signal: options.signal });
    return a.body;
  }

  /** The object's size, time, retention and metadata; undefined when it is not there. */
  async head(key: string, versionId?: string): Promise<ObjectHead | undefined> {
    const query = versionId ? { versionId } : undefined;
    const a = await this.call({ method: 'HEAD', path: this.path(key), query, doing: `HEAD of ${key}`, accept: [404] });
    if (a.status === 404) return undefined;
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(a.headers)) if (k.startsWith('x-amz-meta-') && typeof v === 'string') metadata[k.slice(11)] = v;
    const until = header(a.headers, 'x-amz-object-lock-retain-until-date');
    return {
      size: Number(a.headers['content-length'] ?? 0),
      lastModified: new Date(header(a.headers, 'last-modified') ?? 0),
      etag: unquote(a.headers.etag),
      versionId: header(a.headers, 'x-amz-version-id'),
      retainUntil: until ? new Date(until) : undefined,
      lockMode: header(a.headers, 'x-amz-object-lock-mode'),
      metadata,
    };
  }

  /** Sets the Object Lock retention of the object's current version (COMPLIANCE can only be lengthened). */
  async setRetention(key: string, retention: { mode: 'COMPLIANCE' | 'GOVERNANCE'; until: Date }, versionId?: string): Promise<void> {
    const body = Buffer.from(`<Retention>${xmlElement('Mode', retention.mode)}${xmlElement('RetainUntilDate', retention.until.toISOString())}</Retention>`);
    const query: Record<string, string> = versionId ? { retention: '', versionId } : { retention: '' };
    const headers = { 'content-md5': createHash('md5').update(body).digest('base64'), 'content-type': 'application/xml' };
    await this.call({ method: 'PUT', path: this.path(key), query, headers, body, signBody: true, doing: `setting the retention of ${key}` });
  }

  /** Deletes the object (a given version of it); S3_FORBIDDEN when Object Lock retention holds it. */
  async delete(key: string, versionId?: string, signal?: AbortSignal): Promise<void> {
    const query = versionId ? { versionId } : undefined;
    await this.call({
      method: 'DELETE',
      path: this.path(key),
      query,
      doing: `DELETE of ${key}${versionId ? ` (version ${versionId})` : ''}`,
      accept: [404],
      signal,
    });
  }

  /** Every object under `prefix`, in key order, a page (up to 1000) per request. */
  async *list(prefix: string, startAfter?: string): AsyncGenerator<ObjectInfo> {
    let token: string | undefined;
    do {
      const query: Record<string, string> = { 'list-type': '2', prefix };
      if (token) query['continuation-token'] = token;
      else if (startAfter) query['start-after'] = startAfter;
      const a = await this.call({ method: 'GET', path: this.path(''), query, doing: `listing of ${prefix || '/'}` });
      const xml = a.body.toString('utf8');
      for (const entry of xmlElements(xml, 'Contents')) yield listed(entry);
      token = xmlValue(xml, 'IsTruncated') === 'true' ? xmlValue(xml, 'NextContinuationToken') : undefined;
    } while (token);
  }

  /** Every version and delete marker under `prefix` (a versioned bucket: Object Lock), a page per request. */
  async *listVersions(prefix: string): AsyncGenerator<ObjectVersion> {
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    do {
      const query: Record<string, string> = { versions: '', prefix };
      if (keyMarker) query['key-marker'] = keyMarker;
      if (versionMarker) query['version-id-marker'] = versionMarker;
      const a = await this.call({ method: 'GET', path: this.path(''), query, doing: `listing the versions of ${prefix || '/'}` });
      const xml = a.body.toString('utf8');
      const latest = (e: string): boolean => xmlValue(e, 'IsLatest') === 'true';
      for (const v of xmlElements(xml, 'Version')) yield { ...listed(v), versionId: xmlValue(v, 'VersionId') ?? '', deleteMarker: false, latest: latest(v) };
      for (const m of xmlElements(xml, 'DeleteMarker'))
        yield { ...listed(m), versionId: xmlValue(m, 'VersionId') ?? '', deleteMarker: true, latest: latest(m) };
      const truncated = xmlValue(xml, 'IsTruncated') === 'true';
      keyMarker = truncated ? xmlValue(xml, 'NextKeyMarker') : undefined;
      versionMarker = truncated ? xmlValue(xml, 'NextVersionIdMarker') : undefined;
    } while (keyMarker);
  }

  /** The common prefixes one level below `prefix` (`guests/` -> `guests/101/`, ...). */
  async *listFolders(prefix: string): AsyncGenerator<string> {
    let token: string | undefined;
    do {
      const query: Record<string, string> = { 'list-type': '2', prefix, delimiter: '/' };
      if (token) query['continuation-token'] = token;
      const a = await this.call({ method: 'GET', path: this.path(''), query, doing: `listing of ${prefix || '/'}` });
      const xml = a.body.toString('utf8');
      for (const p of xmlElements(xml, 'CommonPrefixes')) yield xmlValue(p, 'Prefix') ?? '';
      token = xmlValue(xml, 'IsTruncated') === 'true' ? xmlValue(xml, 'NextContinuationToken') : undefined;
    } while (token);
  }

  /** The service's clock (the Date of an answer): lock freshness is judged by it, never by this machine's. */
  async serverTime(): Promise<Date> {
    const a = await this.call({ method: 'HEAD', path: this.path(''), doing: `HEAD of bucket ${this.bucket}`, accept: [404] });
    return dateHeader(a.headers) ?? new Date();
  }

  /** Whether the bucket exists (and these credentials may use it). */
  async bucketExists(): Promise<boolean> {
    const a = await this.call({ method: 'HEAD', path: this.path(''), doing: `HEAD of bucket ${this.bucket}`, accept: [404] });
    return a.status !== 404;
  }

  /** Creates the bucket; with Object Lock enabled when asked (it can only be enabled at creation). */
  async createBucket(region: string, objectLock: boolean): Promise<void> {
    const headers: Record<string, string> = objectLock ? { 'x-amz-bucket-object-lock-enabled': 'true' } : {};
    const body =
      region === 'us-east-1' ? undefined : Buffer.from(`<CreateBucketConfiguration>${xmlElement('LocationConstraint', region)}</CreateBucketConfiguration>`);
    await this.call({ method: 'PUT', path: this.path(''), headers, body, signBody: true, doing: `creating bucket ${this.bucket}` });
  }

  /** The bucket's Object Lock configuration (enabled: false when it has none). */
  async lockConfiguration(): Promise<LockConfiguration> {
    try {
      const a = await this.call({
        method: 'GET',
        path: this.path(''),
        query: { 'object-lock': '' },
        doing: `reading the Object Lock configuration of bucket ${this.bucket}`,
      });
      const xml = a.body.toString('utf8');
      const days = xmlValue(xml, 'Days');
      return { enabled: xmlValue(xml, 'ObjectLockEnabled') === 'Enabled', mode: xmlValue(xml, 'Mode'), days: days === undefined ? undefined : Number(days) };
    } catch (err) {
      if (err instanceof S3Error && (err.code === 'S3_NO_OBJECT_LOCK' || err.status === 404)) return { enabled: false };
      throw err;
    }
  }

  /** Ends the kept connections (a CLI run that is done). */
  close(): void {
    this.conn.agent.destroy();
  }

  private call(call: S3Call): Promise<S3Answer> {
    return s3Request(this.conn, { ...call, doing: `${call.doing} in ${this.where}` });
  }

  private path(key: string): string {
    return this.pathStyle ? uriPath(this.bucket, key) : `/${awsEncode(key, true)}`;
  }
}

function virtualHost(endpoint: string, bucket: string): string {
  const u = new URL(endpoint);
  u.hostname = `${bucket}.${u.hostname}`;
  return u.toString();
}

function listed(entry: string): ObjectInfo {
  return {
    key: decodeXmlText(xmlElements(entry, 'Key')[0] ?? ''),
    size: Number(xmlValue(entry, 'Size') ?? 0),
    lastModified: new Date(xmlValue(entry, 'LastModified') ?? 0),
    etag: unquote(xmlValue(entry, 'ETag')),
  };
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function dateHeader(headers: IncomingHttpHeaders): Date | undefined {
  const d = header(headers, 'date');
  return d ? new Date(d) : undefined;
}

function unquote(etag: string | string[] | undefined): string {
  const e = Array.isArray(etag) ? (etag[0] ?? '') : (etag ?? '');
  return e.replace(/^"|"$/g, '');
}
