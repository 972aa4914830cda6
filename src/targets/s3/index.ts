/**
 * s3: an S3-compatible object store (Ceph RGW, MinIO, AWS S3, ...) as the place a datastore lives.
 * This folder is the client: SigV4 signing (sigv4.ts), one retried request over keep-alive
 * connections (s3-request.ts), the operations a datastore needs (S3Client: put, get into a buffer,
 * head, delete, list, bucket creation and its Object Lock configuration), and what a service's
 * refusal means (s3-errors.ts: S3_UNAUTHORIZED, S3_FORBIDDEN, S3_NO_BUCKET, S3_NOT_FOUND,
 * S3_NO_OBJECT_LOCK, S3_CLOCK_SKEW, S3_REFUSED, S3_FAILED; each message names the operation, the
 * object and the bucket, never a credential).
 *
 * Retries: 5xx, 429, SlowDown, RequestTimeout and answers that never came (reset, refused, timed
 * out) are sent again, up to 6 times, after a random wait of up to 0.2 s x 2^attempt (at most 10 s).
 */
export { S3Client, type S3ClientOptions, type ObjectInfo, type ObjectHead, type ObjectVersion, type PutOptions, type LockConfiguration } from './s3-client.js';
export { S3Error } from './s3-errors.js';
export { type Credentials, authorization, awsEncode, uriPath, amzDate } from './sigv4.js';
export { type RetryPolicy as S3RetryPolicy, DEFAULT_RETRY as S3_DEFAULT_RETRY } from './s3-request.js';
