/**
 * A node's refusal as a typed error. The server answers `{error: {code, message}}`; the client turns
 * it into a RemoteError whose message names what was done, the datastore, the node's URL and the
 * server's reason ("pushing chunk 3fa2... into datastore 'main' on node https://10.0.0.2:8007/ was
 * refused: ... (HTTP 400 CHUNK_FORGED)"). The codes of the protocol itself stay as the server sent
 * them (LOCKED, CHUNK_MISSING, ... below); any other answer is coded by its status: 401
 * REMOTE_UNAUTHORIZED, 403 REMOTE_FORBIDDEN, 404 REMOTE_NOT_FOUND, other 4xx REMOTE_REFUSED, 5xx
 * REMOTE_FAILED; a server's IO or CONFIG_INVALID is its trouble, never taken for one of this node's.
 */
import { ColdvaultError, type ErrorCode } from '../../core/index.js';

/** Server codes that keep their meaning across the wire (the remote datastore protocol's own). */
const PROTOCOL_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'LOCKED',
  'NO_SPACE',
  'CHUNK_MISSING',
  'CHUNK_FORGED',
  'CHUNK_CORRUPT',
  'UPLOAD_NOT_FOUND',
  'UPLOAD_EXPIRED',
  'LEASE_NOT_FOUND',
  'VERSION_NOT_FOUND',
  'MANIFEST_INVALID',
  'INDEX_INVALID',
  // an external disk at the receiving node (server/store-devices.ts)
  'DEVICE_NOT_FOUND',
  'DEVICE_NOT_ALLOWED',
  'DEVICE_NOT_ATTACHED',
  'DEVICE_MOUNT_FAILED',
  'WRONG_DATASTORE',
]);

/** What a request did, for messages: "pushing chunk 3fa2..." and where: the node's URL and the datastore. */
export interface RequestPlace {
  doing: string;
  node: string;
  store: string;
}

export class RemoteError extends ColdvaultError {
  constructor(
    code: ErrorCode,
    message: string,
    /** the HTTP status the node answered */
    readonly status: number,
    /** the code in the node's answer (e.g. FORBIDDEN, PAYLOAD_TOO_LARGE), or `HTTP_<status>` without one */
    readonly serverCode: string,
    readonly node: string,
    readonly store: string,
  ) {
    super(code, message);
    this.name = 'RemoteError';
  }
}

/** The error for an answer with status >= 400 and body `body`. */
export function answerError(place: RequestPlace, status: number, body: Buffer): RemoteError {
  const { code: serverCode, message } = parseErrorBody(status, body);
  const code = clientCode(status, serverCode);
  const text = `${place.doing} ${placeOf(place)} was refused: ${message}${hint(code, place)} (HTTP ${status} ${serverCode})`;
  return new RemoteError(code, text, status, serverCode, place.node, place.store);
}

/** "in datastore 'main' on node https://10.0.0.2:8007/" */
export function placeOf(place: Pick<RequestPlace, 'node' | 'store'>): string {
  return `in datastore '${place.store}' on node ${place.node}`;
}

/** Whether a request that got this status may be sent again (the node's trouble, not the request's). */
export function retryableStatus(status: number): boolean {
  return status === 500 || status === 502 || status === 503 || status === 504;
}

function clientCode(status: number, serverCode: string): ErrorCode {
  if (PROTOCOL_CODES.has(serverCode)) return serverCode as ErrorCode;
  if (status === 401) return 'REMOTE_UNAUTHORIZED';
  if (status === 403) return 'REMOTE_FORBIDDEN';
  if (status === 404) return 'REMOTE_NOT_FOUND';
  return status >= 500 ? 'REMOTE_FAILED' : 'REMOTE_REFUSED';
}

function hint(code: ErrorCode, place: RequestPlace): string {
  switch (code) {
    case 'REMOTE_UNAUTHORIZED':
      return `; make a new token on that node ('coldvault token create NAME --role backup --store ${place.store}') and give it to this one`;
    case 'REMOTE_FORBIDDEN':
      return '; a backup token reaches only the datastore it was made for';
    case 'UPLOAD_NOT_FOUND':
    case 'UPLOAD_EXPIRED':
      return ' (the upload is gone on that node: nothing of it was published; push the version again)';
    default:
      return '';
  }
}

function parseErrorBody(status: number, body: Buffer): { code: string; message: string } {
  const fallback = { code: `HTTP_${status}`, message: body.toString('utf8', 0, Math.min(body.length, 300)).trim() || 'no reason given' };
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = parsed.error ?? {};
    if (typeof code !== 'string' || typeof message !== 'string') return fallback;
    return { code, message };
  } catch {
    return fallback;
  }
}

/** The JSON object of a successful answer; REMOTE_FAILED naming the node when it is none. */
export function answerJson(body: Buffer, node: string, what: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null) return parsed as Record<string, unknown>;
  } catch {
    // not JSON: said below
  }
  throw badAnswer(node, what, body);
}

/** An answer that is not what the protocol says: another program answers there, or another version of it. */
export function badAnswer(node: string, what: string, body: Buffer): ColdvaultError {
  return new ColdvaultError('REMOTE_FAILED', `node ${node} answered ${what} with something else than the protocol's answer: ${body.toString('utf8', 0, 200)}`);
}
