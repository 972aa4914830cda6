/**
 * Errors as HTTP: the ONE place where a thrown error becomes a status code and the JSON body
 * `{error: {code, message}}`. Engine errors keep their stable `ColdvaultError` code; the server's own
 * refusals are `ApiError`s with codes of their own (PATH_NOT_ALLOWED, UNAUTHORIZED, ...). Fastify's
 * errors (schema validation, bad JSON, body too large) get stable codes too. Anything else is a 500
 * INTERNAL whose details go to the server log only.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isColdvaultError, type ErrorCode } from '../core/index.js';

export type ApiErrorCode =
  | 'INVALID_REQUEST'
  | 'PATH_NOT_ALLOWED'
  | 'UNAUTHORIZED'
  | 'LOGIN_FAILED'
  | 'CSRF_CHECK_FAILED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'TASK_NOT_FOUND'
  | 'JOB_EXISTS'
  | 'METHOD_NOT_ALLOWED'
  | 'NOT_ACCEPTABLE'
  | 'RATE_LIMITED'
  | 'NOT_SUPPORTED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INTERNAL';

export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly options: { cause?: unknown; retryAfterSeconds?: number } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'ApiError';
  }
}

const API_STATUS: Record<ApiErrorCode, number> = {
  INVALID_REQUEST: 400,
  PATH_NOT_ALLOWED: 400,
  NOT_SUPPORTED: 400,
  UNAUTHORIZED: 401,
  LOGIN_FAILED: 401,
  CSRF_CHECK_FAILED: 403,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  TASK_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  NOT_ACCEPTABLE: 406,
  JOB_EXISTS: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  INTERNAL: 500,
};

/** Engine codes that are the client's doing or a state conflict; every other code is a 500. */
const ENGINE_STATUS: Partial<Record<ErrorCode, number>> = {
  USAGE: 400,
  JOB_INVALID: 400,
  STORAGE_UNKNOWN: 400,
  DISK_UNSUPPORTED: 400,
  DISK_PATH_NOT_ALLOWED: 400,
  DISK_PATH_SPECIAL: 400,
  GUEST_NOT_FOUND: 404,
  VERSION_NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  NOT_A_DATASTORE: 404,
  GUEST_ID_TAKEN: 409,
  JOB_RUNNING: 409,
  LOCKED: 409,
  DATASTORE_EXISTS: 409,
  FOLDER_NOT_EMPTY: 409,
  DATASTORE_TOO_NEW: 409,
  DISK_MISSING: 409,
  ABORTED: 409,
  GUEST_CONFIG_MALFORMED: 422,
  MANIFEST_CORRUPT: 422,
  DEVICE_NOT_FOUND: 404,
  WRONG_DATASTORE: 409,
  DEVICE_MOUNT_FAILED: 409,
  DEVICE_NOT_ALLOWED: 403,
  DEVICE_NOT_ATTACHED: 409,
  NO_SPACE: 507,
  // encrypted versions: a key file or passphrase that does not open, a version that needs its key or another key
  KEY_INVALID: 400,
  KEY_PASSPHRASE_WRONG: 400,
  KEY_REQUIRED: 400,
  KEY_WRONG: 400,
  // the remote datastore protocol (uploads/)
  CHUNK_FORGED: 400,
  INDEX_INVALID: 400,
  MANIFEST_INVALID: 400,
  CHUNK_MISSING: 409,
  UPLOAD_NOT_FOUND: 404,
  LEASE_NOT_FOUND: 404,
  UPLOAD_EXPIRED: 410,
  // another node (cluster mode: a remote restore's or listing's node) refused or could not be reached
  CONNECTION_FAILED: 502,
  TLS_FAILED: 502,
  FINGERPRINT_MISMATCH: 502,
  REMOTE_UNAUTHORIZED: 502,
  REMOTE_FORBIDDEN: 502,
  REMOTE_NOT_FOUND: 502,
  REMOTE_REFUSED: 502,
  REMOTE_FAILED: 502,
  HYPERVISOR: 502,
  START_FAILED: 502,
  MAIL_FAILED: 502,
  STOP_TIMEOUT: 504,
};

/** Fastify's own errors (content type, body size, JSON syntax, 404 / 405) by status. */
const FASTIFY_CODES: Record<number, ApiErrorCode> = {
  400: 'INVALID_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
};

export interface HttpError {
  status: number;
  code: string;
  message: string;
  retryAfterSeconds?: number;
}

export function toHttpError(err: unknown): HttpError {
  if (err instanceof ApiError) {
    return { status: API_STATUS[err.code], code: err.code, message: err.message, retryAfterSeconds: err.options.retryAfterSeconds };
  }
  if (isColdvaultError(err)) return { status: ENGINE_STATUS[err.code] ?? 500, code: err.code, message: err.message };
  const fe = err as Partial<FastifyError>;
  if (fe.validation) return { status: 400, code: 'INVALID_REQUEST', message: validationMessage(fe) };
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) return { status, code: FASTIFY_CODES[status] ?? 'INVALID_REQUEST', message: fe.message ?? 'invalid request' };
  return { status: 500, code: 'INTERNAL', message: 'internal error (details in the server log)' };
}

/** Fastify's schema message, naming the field for an unknown one ("body: unknown field 'foo' (no additional properties)"). */
function validationMessage(fe: Partial<FastifyError>): string {
  const first = fe.validation?.[0];
  const extra = (first?.params as { additionalProperty?: unknown } | undefined)?.additionalProperty;
  if (first?.keyword === 'additionalProperties' && typeof extra === 'string') {
    return `${fe.validationContext ?? 'request'}${first.instancePath}: unknown field '${extra}' (no additional properties allowed)`;
  }
  return fe.message ?? 'invalid request';
}

export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const http = toHttpError(err);
  if (http.retryAfterSeconds !== undefined) void reply.header('retry-after', String(http.retryAfterSeconds));
  return reply
    .code(http.status)
    .type('application/json')
    .send({ error: { code: http.code, message: http.message } });
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const http = toHttpError(err);
    if (http.status >= 500) request.log.error({ err }, `${request.method} ${request.url} failed`);
    return sendError(reply, err);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, new ApiError('NOT_FOUND', `${request.method} ${request.url.split('?')[0]}: no such route`)));
}
