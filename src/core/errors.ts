/**
 * Typed errors. Every error coldvault raises on purpose is a `ColdvaultError` with a stable `code`
 * (scripts and the HTTP layer switch on it) and, where another error caused it, an ES2022 `cause`.
 * Messages name the verb, the object and its id: "reading chunk 3fa2.. of store '/mnt/usb' failed: EIO".
 */
export type ErrorCode =
  | 'USAGE'
  | 'CONFIG_INVALID'
  | 'GUEST_NOT_FOUND'
  | 'GUEST_CONFIG_MALFORMED'
  | 'DISK_MISSING'
  | 'DISK_UNSUPPORTED'
  /** a disk outside the storages and allowDiskPaths, or a restore target outside its storage (guests/disk-paths.ts) */
  | 'DISK_PATH_NOT_ALLOWED'
  /** a "disk" that is a character device, FIFO, socket, directory, or under /proc or /sys */
  | 'DISK_PATH_SPECIAL'
  | 'STORAGE_UNKNOWN'
  | 'NOT_A_DATASTORE'
  | 'DATASTORE_EXISTS'
  | 'FOLDER_NOT_EMPTY'
  | 'DATASTORE_TOO_NEW'
  | 'DATASTORE_CORRUPT'
  | 'VERSION_NOT_FOUND'
  | 'GUEST_ID_TAKEN'
  | 'NO_SPACE'
  | 'LOCKED'
  | 'CHUNK_MISSING'
  | 'CHUNK_CORRUPT'
  /** a chunk blob received from another node that is damaged or does not hash to its name (datastore/received.ts) */
  | 'CHUNK_FORGED'
  /** an upload (server/uploads) that does not exist, was finished or aborted, or belongs to another store or token */
  | 'UPLOAD_NOT_FOUND'
  /** a read lease (server/read-leases.ts) that was released, ended idle, or belongs to another store or token */
  | 'LEASE_NOT_FOUND'
  /** an upload the server aborted after it sat idle for uploadIdleSeconds */
  | 'UPLOAD_EXPIRED'
  /** a pushed manifest that breaks the schema or does not match the upload or its indexes */
  | 'MANIFEST_INVALID'
  /** a pushed index that does not decode or does not fit the store */
  | 'INDEX_INVALID'
  | 'INDEX_CORRUPT'
  | 'MANIFEST_CORRUPT'
  | 'DIGEST_MISMATCH'
  | 'ABORTED'
  | 'STOP_TIMEOUT'
  | 'START_FAILED'
  | 'HYPERVISOR'
  /** the hypervisor holds a lock on the guest (Proxmox `lock: migrate|snapshot|backup...`) */
  | 'GUEST_LOCKED'
  /** a guest was started while coldvault read its disks with it off: that version is discarded */
  | 'GUEST_STARTED'
  | 'HOOK_FAILED'
  | 'JOB_NOT_FOUND'
  | 'JOB_INVALID'
  | 'JOB_RUNNING'
  | 'MAIL_FAILED'
  /** a job's webhook target could not be reached or refused the report, after its retries (jobs/notify) */
  | 'WEBHOOK_FAILED'
  | 'DEVICE_NOT_FOUND'
  | 'DEVICE_MOUNT_FAILED'
  /** an external disk failed or was removed while a job used it (I/O errors, vanished, shrunk) */
  | 'DEVICE_FAILED'
  | 'WRONG_DATASTORE'
  /** a sending node asked to mount a disk that this node's config storeDevices does not list for that store (server/store-devices.ts) */
  | 'DEVICE_NOT_ALLOWED'
  /** no external disk is attached to a store that is a disk's (storeDevices), or the attachment named is not there */
  | 'DEVICE_NOT_ATTACHED'
  /** a cold snapshot of a disk could not be made (guests/snapshots) */
  | 'SNAPSHOT_FAILED'
  /** the peer's TLS certificate is not the pinned one (targets/remote): permanent, never retried */
  | 'FINGERPRINT_MISMATCH'
  /** the TLS handshake with a node failed (it speaks no TLS, no common protocol...) */
  | 'TLS_FAILED'
  /** a node could not be reached or the connection broke (refused, unreachable, reset, timed out) */
  | 'CONNECTION_FAILED'
  /** another node refused this node's API token (unknown, revoked or expired): HTTP 401 (targets/remote) */
  | 'REMOTE_UNAUTHORIZED'
  /** another node refused the request for this token's scope (another store, a role without the right): HTTP 403 */
  | 'REMOTE_FORBIDDEN'
  /** another node has no such datastore, file or route: HTTP 404 (its versions and uploads keep their own codes) */
  | 'REMOTE_NOT_FOUND'
  /** another node refused the request as invalid or too large (HTTP 4xx without a code of its own) */
  | 'REMOTE_REFUSED'
  /** another node failed on its side (HTTP 5xx other than NO_SPACE): may pass, worth a retry when idempotent */
  | 'REMOTE_FAILED'
  /** a key file or paper key that is not one, is damaged, or whose parameters are out of bounds (format/key-file.ts) */
  | 'KEY_INVALID'
  /** the passphrase does not open the key file (or none was given where one is needed) */
  | 'KEY_PASSPHRASE_WRONG'
  /** a file that would be overwritten by a new key file already exists */
  | 'KEY_EXISTS'
  /** an encrypted version read without its key (restore, list of its config): the message names the key's fingerprint */
  | 'KEY_REQUIRED'
  /** a key that is not the one an encrypted version was made with: the message names both fingerprints */
  | 'KEY_WRONG'
  /** the TLS certificate / key files are there but unusable (serve's own pair in the state dir, or configured) */
  | 'TLS_CERT_DAMAGED'
  /** serve's self-signed TLS certificate could not be made (openssl missing or failing) */
  | 'TLS_CERT_FAILED'
  /** an S3 service refused the credentials (unknown access key, wrong secret: the signature did not match) (targets/s3) */
  | 'S3_UNAUTHORIZED'
  /** an S3 service denied the request (AccessDenied: the key's policy, or an object still under Object Lock retention) */
  | 'S3_FORBIDDEN'
  /** the bucket does not exist (NoSuchBucket) */
  | 'S3_NO_BUCKET'
  /** the object does not exist (NoSuchKey, 404) */
  | 'S3_NOT_FOUND'
  /** Object Lock was asked for, and the bucket was not created with it (it cannot be turned on later for coldvault's use) */
  | 'S3_NO_OBJECT_LOCK'
  /** this machine's clock and the S3 service's differ by more than the 15 minutes a signature is valid */
  | 'S3_CLOCK_SKEW'
  /** an S3 service refused the request as invalid (another 4xx) */
  | 'S3_REFUSED'
  /** an S3 service failed or could not be reached, also after the retries (5xx, SlowDown, timeouts, resets) */
  | 'S3_FAILED'
  /** this host cannot do what the guest needs (a firmware that is not installed, a disk bus coldvault cannot attach) */
  | 'NOT_SUPPORTED'
  /** a boot test's guest did not come up (no success signal within the time, or QEMU ended) */
  | 'BOOT_TEST_FAILED'
  /** a restore-on-the-fly could not start its guest or finish its copy (pipeline/live-restore) */
  | 'LIVE_RESTORE_FAILED'
  | 'IO';

export class ColdvaultError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'ColdvaultError';
  }
}

export function isColdvaultError(err: unknown, code?: ErrorCode): err is ColdvaultError {
  return err instanceof ColdvaultError && (code === undefined || err.code === code);
}

/** The errno code of a Node system error (ENOENT, ENOSPC...), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = err.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Wraps a low-level error in an IO (or NO_SPACE) ColdvaultError whose message says what was being done. */
export function ioError(doing: string, cause: unknown): ColdvaultError {
  if (cause instanceof ColdvaultError) return cause;
  const errno = errnoCode(cause);
  const detail = errno ?? (cause instanceof Error ? cause.message : String(cause));
  const code: ErrorCode = errno === 'ENOSPC' || errno === 'EDQUOT' ? 'NO_SPACE' : 'IO';
  return new ColdvaultError(code, `${doing} failed: ${detail}`, { cause });
}

/** A one-line description of any thrown value, for logs and CLI output. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
