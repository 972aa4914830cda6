/**
 * What an S3 service's refusal means for coldvault: its HTTP status and XML error code -> one
 * ColdvaultError with a stable code and a message naming the operation, the bucket or object, and
 * what to do. And which failures are worth a retry (5xx, 429, SlowDown, timeouts, resets).
 */
import { ColdvaultError, type ErrorCode } from '../../core/index.js';
import { xmlValue } from './xml.js';

/** An S3 answer that was not a success: status, the service's error code and message. */
export class S3Error extends ColdvaultError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly status: number,
    readonly s3Code: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'S3Error';
  }
}

const RETRIED_CODES = new Set(['SlowDown', 'RequestTimeout', 'InternalError', 'ServiceUnavailable', 'OperationAborted']);
const RETRIED_ERRNOS = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
]);

/** Whether an answer with this status and S3 code may pass when sent again. */
export function retriedStatus(status: number, s3Code: string): boolean {
  return status >= 500 || status === 429 || RETRIED_CODES.has(s3Code);
}

/** Whether a failure to get an answer at all (reset, refused, timed out) may pass when sent again. */
export function retriedFailure(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  return RETRIED_ERRNOS.has(code) || code === 'S3_TIMEOUT' || (err instanceof Error && /socket hang up/.test(err.message));
}

/** The error of a failed answer: `doing` says what was asked ("PUT of chunks/ab/ab12.. in bucket b"). */
export function answerError(doing: string, status: number, body: string): S3Error {
  const s3Code = xmlValue(body, 'Code') ?? (status === 404 ? 'NotFound' : `HTTP${status}`);
  const said = xmlValue(body, 'Message');
  const detail = `${s3Code}${said ? `: ${said}` : ''} (HTTP ${status})`;
  const [code, advice] = classify(status, s3Code);
  return new S3Error(code, `${doing} failed: ${detail}${advice ? `; ${advice}` : ''}`, status, s3Code);
}

function classify(status: number, s3Code: string): [ErrorCode, string] {
  switch (s3Code) {
    case 'InvalidAccessKeyId':
      return ['S3_UNAUTHORIZED', 'the access key id is not known to this service: check accessKeyId / AWS_ACCESS_KEY_ID'];
    case 'SignatureDoesNotMatch':
      return ['S3_UNAUTHORIZED', 'the secret access key is wrong (or the region): check secretAccessKeyFile / AWS_SECRET_ACCESS_KEY'];
    case 'AccessDenied':
      return ['S3_FORBIDDEN', 'the key may not do this here (its policy), or the object is under Object Lock retention'];
    case 'NoSuchBucket':
      return ['S3_NO_BUCKET', "the bucket does not exist: create it with 'coldvault datastore init s3://BUCKET/PREFIX --endpoint URL'"];
    case 'NoSuchKey':
    case 'NotFound':
      return ['S3_NOT_FOUND', ''];
    case 'RequestTimeTooSkewed':
      return ['S3_CLOCK_SKEW', "this machine's clock differs from the service's by more than 15 minutes: set the clock (NTP)"];
    case 'ObjectLockConfigurationNotFoundError':
      return ['S3_NO_OBJECT_LOCK', 'the bucket was created without Object Lock, which cannot be added for coldvault later: use a new bucket'];
    default:
      return status >= 500 || status === 429 ? ['S3_FAILED', 'the service failed; it was retried'] : ['S3_REFUSED', ''];
  }
}
