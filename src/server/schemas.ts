/**
 * JSON schemas (TypeBox) of every route's params, query, body and responses. Bodies refuse unknown
 * fields (additionalProperties: false, and Ajv is told not to strip them), so a typo is a 400, never
 * silently ignored. The OpenAPI document is generated from these (openapi.ts).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { WEEKDAYS } from '../jobs/index.js';
import { ROLES } from './auth/index.js';

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const StringEnum = <T extends string>(values: readonly T[]) => Type.Unsafe<T>({ type: 'string', enum: [...values] });

export const Vmid = Type.String({ pattern: '^[1-9][0-9]{2,8}$', description: 'a guest id (100 to 999999999)' });
export const JobId = Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,63}$' });
export const TaskId = Type.String({ pattern: '^[A-Za-z0-9._-]{1,128}$' });
const PathText = Type.String({ maxLength: 4096 });
const StoreRef = Type.String({
  minLength: 1,
  maxLength: 4096,
  description: 'a configured datastore name, or the folder of a configured datastore or of a job',
});

export const ErrorBody = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) });
export const OkBody = Type.Object({ ok: Type.Boolean() });
export const TaskAccepted = Type.Object({ taskId: Type.String() });

/** Adds the error body for every 4xx / 5xx answer. */
export function responses(ok: Record<number, TSchema>): Record<string, TSchema> {
  return { ...ok, '4xx': ErrorBody, '5xx': ErrorBody };
}

const jobFields = {
  node: Type.String({ maxLength: 64 }),
  store: StoreRef,
  device: PathText,
  vmid: Type.Array(Vmid, { maxItems: 10_000 }),
  all: Type.Boolean(),
  exclude: Type.Array(Vmid, { maxItems: 10_000 }),
  days: Type.Array(StringEnum(WEEKDAYS), { maxItems: 7 }),
  at: Type.String({ pattern: '^([01]?[0-9]|2[0-3]):[0-5][0-9]$' }),
  schedule: Type.String({
    maxLength: 200,
    description:
      "replaces days + at: a Proxmox VE calendar event ('mon..fri 22:30', 'sat 02:00', '*/4:00', 'daily') or a 5-field cron expression (minute hour day-of-month month day-of-week); exactly five fields is cron",
  }),
  keep: Type.Integer({ minimum: 1 }),
  // cluster: the versions are pushed to datastore `store` (its name there) on the previous node of the config's ring
  mode: StringEnum(['stop', 'cluster'] as const),
  mailto: Type.Array(Type.String({ maxLength: 254 }), { maxItems: 100 }),
  mailNotification: StringEnum(['always', 'failure'] as const),
  scriptBefore: PathText,
  scriptAfter: PathText,
  hook: PathText,
  stopTimeout: Type.Integer({ minimum: 1 }),
  forceStop: Type.Boolean(),
  lockWait: Type.Integer({ minimum: 0 }),
  compress: StringEnum(['zstd', 'none'] as const),
  enabled: Type.Boolean(),
  initDevice: Type.Boolean(),
  deviceDatastoreId: Type.String({ maxLength: 1024 }), // one id per rotated disk, separated by commas
  // auto: cold snapshots of the disks (the guest runs again before they are read) where every disk can have one; off: off for the read
  snapshot: StringEnum(['auto', 'off'] as const),
  fullEvery: Type.Integer({ minimum: 0, description: 'days after a full read when a changed-extent nightly reads everything again (default 7)' }),
  kind: StringEnum(['backup', 'sync'] as const),
  bootTest: Type.Boolean({
    description:
      'backup jobs into a datastore of this node: boot each new version in isolation after the backup (a failed boot test is reported, the backup stays)',
  }),
  bootTestExpect: Type.String({ maxLength: 1000, description: "the boot test's serial console pattern (a regular expression; default a login prompt)" }),
  bootTestTimeout: Type.Integer({ minimum: 1, description: 'seconds the boot test waits for the signal (default 300)' }),
  bwlimit: Type.Number({ exclusiveMinimum: 0, description: 'cluster mode: MB/s the push may use at most' }),
  objectLockDays: Type.Integer({
    minimum: 1,
    maximum: 36_500,
    description: "into an S3 datastore made with Object Lock: days the job's versions are immutable (at least the datastore's)",
  }),
  from: Type.String({
    minLength: 1,
    maxLength: 4096,
    description:
      "a sync job's source: NODE:STORE (a node of cluster.nodes, a datastore there), or a datastore of this server: a configured name (folder or S3), a configured or job's folder, a configured S3 datastore's s3:// address",
  }),
  encrypt: Type.Object(
    {
      keyFile: Type.String({ minLength: 1, maxLength: 4096, description: 'a key file (coldvault key create) inside the config’s keyDirs' }),
      passphraseFile: Type.Optional(
        Type.String({ maxLength: 4096, description: 'a file inside keyDirs whose first line is the passphrase (else COLDVAULT_KEY_PASSPHRASE of serve)' }),
      ),
    },
    {
      additionalProperties: false,
      description:
        'backup jobs: encrypt every version with this key. Paths only, never a key or passphrase; the API accepts them inside the config’s keyDirs (default /etc/coldvault/keys) or as the job has them',
    },
  ),
};
// a job's webhook as sent: the secret is write-only (absent: kept for the same URL; null or '': removed)
const WebhookBody = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048, description: 'the http(s) address the report is posted to' }),
    secret: Type.Optional(
      Nullable(
        Type.String({
          maxLength: 4096,
          description:
            'sent as Authorization: Bearer and the key of X-Coldvault-Signature; needs https (or http to loopback). Write-only: left out, the stored one is kept for the same URL; null or empty: none',
        }),
      ),
    ),
    notification: Type.Optional(StringEnum(['always', 'failure'] as const)),
    topic: Type.Optional(Nullable(Type.String({ maxLength: 64, description: "ntfy's JSON form: the topic (the URL is then the ntfy server's root)" }))),
    hasSecret: Type.Optional(Type.Boolean({ description: 'read-only (as a job answer has it); ignored when sent' })),
  },
  { additionalProperties: false, description: 'a JSON POST of the result when the job ends (always, or on failure only)' },
);
/** a job's webhook as answered: the secret only as hasSecret */
const WebhookShown = Type.Object({
  url: Type.String(),
  notification: StringEnum(['always', 'failure'] as const),
  topic: Type.Optional(Type.String()),
  hasSecret: Type.Boolean(),
});
const {
  store,
  node,
  device,
  schedule,
  keep,
  scriptBefore,
  scriptAfter,
  hook,
  deviceDatastoreId,
  from,
  bwlimit,
  objectLockDays,
  encrypt,
  bootTestExpect,
  bootTestTimeout,
  ...withDefaults
} = jobFields;
/** the fields without a default: absent from a job that does not set them */
const optionalFields = {
  node,
  device,
  schedule,
  keep,
  scriptBefore,
  scriptAfter,
  hook,
  deviceDatastoreId,
  from,
  bwlimit,
  objectLockDays,
  encrypt,
  bootTestExpect,
  bootTestTimeout,
};
/** Answered with a job, ignored in a request's body (a job read, changed and sent back is accepted). */
const readOnlyFields = {
  nextRun: Nullable(
    Type.String({ description: "when the scheduler starts the job next (the node's local time zone), null when disabled or without a schedule; read-only" }),
  ),
};

const JobOptionals = Type.Partial(Type.Object({ ...optionalFields, ...withDefaults, ...readOnlyFields, webhook: WebhookBody }));

export const JobCreate = Type.Composite([Type.Object({ id: JobId, store }), JobOptionals], { additionalProperties: false });
export const JobReplace = Type.Composite([Type.Object({ store }), Type.Partial(Type.Object({ id: JobId })), JobOptionals], { additionalProperties: false });
export type JobBody = Static<typeof JobReplace>;
export const JOB_BODY_KEYS = [...Object.keys(jobFields), 'webhook'];

/** A job as the API answers it: the fields with defaults are always there. */
export const Job = Type.Composite([
  Type.Object({ id: JobId, store, ...withDefaults }),
  Type.Partial(Type.Object({ ...optionalFields, ...readOnlyFields, webhook: WebhookShown })),
]);
export const JobParams = Type.Object({ id: JobId });
export const JobRunQuery = Type.Object(
  { full: Type.Optional(Type.Boolean({ description: 'read every chunk this run (no changed-extent nightly from a base)' })) },
  { additionalProperties: false },
);

export const Task = Type.Object({
  id: Type.String(),
  type: Type.String(),
  jobId: Nullable(Type.String()),
  node: Type.String(),
  status: StringEnum(['running', 'ok', 'failed'] as const),
  start: Type.String(),
  end: Nullable(Type.String()),
  pid: Type.Integer(),
  host: Type.String(),
  summary: Nullable(Type.String()),
  result: Type.Unknown({
    description:
      'what the task produced, null while it runs. A backup job: `{guests: [{vmid, name, status, seconds, bytes, downtimeMs?, error?, version?, bootTest?: {ok, seconds, detail}}]}`, ' +
      'downtimeMs being the milliseconds coldvault held that guest off (absent when it did not stop it); a cluster-mode push adds ' +
      'logicalBytes (the disks) and wireBytes (sent and received over the network)',
  }),
  startedBy: Nullable(
    Type.String({
      description:
        '`token:<name>`, `admin@web`, `scheduler`, `serve` (what serve resumes at its start) or `<user>@cli`; null for tasks from before it was recorded',
    }),
  ),
});
export const TaskParams = Type.Object({ id: TaskId });
export const TaskListQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })) }, { additionalProperties: false });
export const LogQuery = Type.Object({ from: Type.Optional(Type.Integer({ minimum: 0, default: 0 })) }, { additionalProperties: false });
export const LogLine = Type.Object({
  n: Type.Integer(),
  time: Type.String(),
  level: StringEnum(['INFO', 'WARN', 'ERROR'] as const),
  message: Type.String(),
  text: Type.String(),
});

export const Progress = Type.Object({
  phase: StringEnum(['backup', 'restore', 'verify'] as const),
  item: Type.String(),
  totalBytes: Type.Number(),
  readBytes: Type.Number(),
  writtenBytes: Type.Number(),
  zeroBytes: Type.Number(),
  dedupBytes: Type.Number(),
  elapsedSeconds: Type.Number(),
});
export const DatastoreStatus = Type.Object({
  name: Type.String(),
  dir: Type.String({ description: 'the folder; for an S3 datastore its s3://BUCKET/PREFIX/' }),
  kind: Type.Optional(Type.Literal('s3', { description: 'an S3 datastore (absent: a folder)' })),
  endpoint: Type.Optional(Type.String({ description: 'S3: the service' })),
  objectLockDays: Type.Optional(Type.Integer({ description: 'S3: every version is kept under Object Lock this many days' })),
  used: Type.Optional(Type.Number({ description: 'bytes used on the filesystem; S3: the stored bytes of the versions (no free space to ask about)' })),
  free: Type.Optional(Type.Number()),
  total: Type.Optional(Type.Number()),
  versions: Type.Optional(Type.Integer()),
  logicalBytes: Type.Optional(Type.Number()),
  storedBytes: Type.Optional(Type.Number()),
  error: Type.Optional(Type.String()),
});
export const Status = Type.Object({
  node: Type.String(),
  version: Type.String(),
  uptime: Type.Number({ description: 'seconds since the server started' }),
  running: Type.Array(Type.Object({ taskId: Type.String(), type: Type.String(), jobId: Nullable(Type.String()), progress: Nullable(Progress) })),
  datastores: Type.Array(DatastoreStatus),
});

export const Guest = Type.Object({
  id: Type.String(),
  status: StringEnum(['running', 'stopped', 'paused', 'unknown'] as const),
  name: Type.String(),
  type: Type.Literal('qemu'),
  diskSize: Nullable(Type.Number({ description: 'bytes of the disks a backup reads; null when one is missing' })),
});

export const Version = Type.Object({
  id: Type.String(),
  version: Type.Integer(),
  time: Type.String(),
  name: Type.String(),
  node: Type.String(),
  disks: Type.Array(
    Type.Object({ key: Type.String(), volume: Type.String(), format: Type.String(), size: Type.Number(), sha256: Type.String(), zeroBytes: Type.Number() }),
  ),
  verified: Type.Boolean(),
  verifyState: Type.String(),
  verifiedAt: Nullable(Type.String()),
  protected: Type.Boolean(),
  logicalBytes: Type.Number(),
  zeroBytes: Type.Number(),
  newBytes: Type.Number(),
  storedBytes: Type.Number(),
  downtimeMs: Nullable(
    Type.Integer({ minimum: 0, description: 'milliseconds the guest was off for this backup (shutdown request to started again); null: not recorded' }),
  ),
  encrypted: Type.Boolean({ description: 'whether the version is encrypted (restore needs its key file)' }),
  keyFingerprint: Nullable(
    Type.String({ description: "the fingerprint of the key an encrypted version was made with ('coldvault key show'); null when not encrypted" }),
  ),
  bootTest: Type.Optional(
    Nullable(
      Type.Object(
        {
          ok: Type.Boolean(),
          seconds: Type.Number({ description: "from the guest's start to its signal (passed), or until the test gave up" }),
          signal: Type.String({ description: 'serial /REGEX/, guest-agent or script PATH' }),
          at: Type.String({ description: 'when the test ended' }),
          detail: Nullable(Type.String({ description: 'what showed the signal, or why the test failed' })),
        },
        {
          description:
            "the version's last boot test (coldvault boot-test, job bootTest); null when never tested. The screenshot: GET /api/backups/{vmid}/{version}/screenshot",
        },
      ),
    ),
  ),
  store: Type.String(),
});
/** A node of the config's `cluster.nodes` (its `name`). */
const NodeName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$', description: "a node of the config's cluster.nodes" });
export const BackupsQuery = Type.Object(
  { guest: Type.Optional(Vmid), store: Type.Optional(StoreRef), remote: Type.Optional(NodeName) },
  { additionalProperties: false },
);

export const ScreenshotParams = Type.Object({ vmid: Vmid, version: Type.Integer({ minimum: 1 }) });
export const ScreenshotQuery = Type.Object({ store: Type.Optional(StoreRef) }, { additionalProperties: false });

/** The key of an encrypted version for a restore or verify: paths inside the config's keyDirs, never the key or passphrase. */
const keyFields = {
  keyFile: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'the key file of encrypted versions (coldvault key create), a path inside the config’s keyDirs (default /etc/coldvault/keys)',
    }),
  ),
  passphraseFile: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'with keyFile: a file inside keyDirs whose first line is its passphrase (else COLDVAULT_KEY_PASSPHRASE of serve)',
    }),
  ),
};

export const VerifyBody = Type.Object(
  { store: StoreRef, guest: Type.Optional(Vmid), version: Type.Optional(Type.Integer({ minimum: 1 })), ...keyFields },
  {
    additionalProperties: false,
    description: 'without keyFile, encrypted versions are checked without their key (CRC and structure; the result lists them in contentUnchecked)',
  },
);
const Keep = Type.Optional(Type.Integer({ minimum: 0 }));
export const PruneBody = Type.Object(
  {
    store: StoreRef,
    guest: Vmid,
    keepLast: Type.Integer({ minimum: 0 }),
    keepHourly: Keep,
    keepDaily: Keep,
    keepWeekly: Keep,
    keepMonthly: Keep,
    keepYearly: Keep,
    dryRun: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export const PruneResult = Type.Object({ removed: Type.Array(Type.Integer()), dryRun: Type.Boolean(), taskId: Type.String() });
export const RestoreBody = Type.Object(
  {
    fromDevice: Type.Optional(PathText),
    fromPath: Type.Optional(StoreRef),
    id: Vmid,
    version: Type.Integer({ minimum: 1 }),
    newId: Vmid,
    unique: Type.Optional(Type.Boolean()),
    force: Type.Optional(Type.Boolean()),
    targetStorage: Type.Optional(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,63}$' })),
    /** read the version from datastore `fromPath` (its name there) on this node of the cluster */
    remote: Type.Optional(NodeName),
    // an encrypted version: its key file (on this node), refused without it (KEY_REQUIRED) or with another key (KEY_WRONG)
    ...keyFields,
    live: Type.Optional(
      Type.Boolean({
        description:
          'restore on the fly (qemu driver only): the restored guest starts at once on its backup (qcow2 overlays over an NBD export of the version) while QEMU copies its disks to their final volumes, then moves it onto them; the task ends when the guest runs on its final volumes. Not with force; another driver is refused (NOT_SUPPORTED)',
      }),
    ),
    bwlimit: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'with live: MB/s the copy to the final volumes may use at most' })),
  },
  { additionalProperties: false },
);

export const LoginBody = Type.Object({ password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false });
export const Health = Type.Object({ ok: Type.Boolean(), version: Type.String() });
export const WhoAmI = Type.Object({
  name: Type.String({ description: '`token:<name>` or `admin@web`' }),
  role: StringEnum(ROLES),
  store: Nullable(Type.String({ description: 'the one datastore of a `backup` token' })),
});

// ---- GET /api/v1/overview (jobs/overview) ----

export const OverviewQuery = Type.Object(
  { days: Type.Optional(Type.Integer({ minimum: 1, maximum: 366, default: 90, description: 'days of run history and rotation (default 90)' })) },
  { additionalProperties: false },
);
const GUEST_FLAGS = ['not-backed-up', 'failed', 'overdue', 'verify-failed', 'boot-test-failed'] as const;
const Day = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: "a day of the node's local calendar, YYYY-MM-DD" });
const Ms = Nullable(Type.Integer({ minimum: 0 }));
const Bytes = Nullable(Type.Number({ minimum: 0 }));
export const LastBackup = Type.Object(
  {
    time: Type.String({ description: "when it started: a version's time, or a failed run's start" }),
    result: StringEnum(['ok', 'failed'] as const),
    durationMs: Ms,
    downtimeMs: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
      description: 'how long the guest was off for it; null: not stopped or not recorded',
    }),
    newBytes: Type.Union([Type.Number({ minimum: 0 }), Type.Null()], { description: 'plain bytes of the chunks the version added to the store' }),
    logicalBytes: Type.Union([Type.Number({ minimum: 0 }), Type.Null()], { description: "the disks' size" }),
    storedBytes: Type.Union([Type.Number({ minimum: 0 }), Type.Null()], { description: 'bytes the version newly wrote, after compression' }),
    job: Nullable(Type.String({ description: 'the job whose run it was; null: not a job run (coldvault backup), or not known' })),
    version: Nullable(Type.Integer()),
    store: Nullable(
      Type.String({ description: 'the store holding the version (its name); null: a failed run, or a version this node cannot see (cluster mode)' }),
    ),
    error: Nullable(Type.String({ description: "a failed run's error" })),
  },
  { description: "the guest's newest backup: the newest version in any store, or a job run of it that started later (a failed one)" },
);
export const OverviewGuest = Type.Object({
  id: Type.String(),
  name: Type.String(),
  node: Type.String(),
  covered: Type.Boolean({ description: 'an enabled backup job backs the guest up' }),
  coveringJobs: Type.Array(Type.String()),
  lastBackup: Nullable(LastBackup),
  lastGood: Nullable(Type.String({ description: 'the newest version, or the start of the newest run that backed the guest up' })),
  nextRun: Nullable(Type.Object({ time: Type.String(), job: Type.String() }, { description: 'the next scheduled run of a covering job' })),
  versions: Type.Integer({ description: "the guest's versions in every store this node reads" }),
  verified: StringEnum(['ok', 'failed', 'incomplete', 'never'] as const),
  bootTest: Nullable(StringEnum(['ok', 'failed'] as const)),
  daysSinceGood: Nullable(Type.Integer({ description: 'whole days since lastGood' })),
  flags: Type.Array(StringEnum(GUEST_FLAGS), {
    description:
      'not-backed-up: no enabled backup job covers it; failed: its last backup failed; overdue: a covering job ran on schedule (6 h ago or more) and did not back it up since; verify-failed / boot-test-failed: its newest version failed the last verify / boot test',
  }),
});
export const OverviewDatastore = Type.Object({
  name: Type.String(),
  dir: Type.String(),
  kind: Type.Optional(Type.Literal('s3')),
  usedBytes: Type.Union([Type.Number(), Type.Null()], { description: 'bytes used on the filesystem (S3: stored by the versions)' }),
  freeBytes: Type.Union([Type.Number(), Type.Null()], { description: 'bytes free on the filesystem; null for S3' }),
  totalBytes: Bytes,
  logicalBytes: Type.Number({ description: "the versions' disks" }),
  storedBytes: Type.Number({ description: 'what the versions wrote, after dedup and compression' }),
  versions: Type.Integer(),
  dedupFactor: Type.Union([Type.Number(), Type.Null()], { description: 'logicalBytes / storedBytes (dedup, zero chunks and compression together)' }),
  usage: Type.Array(Type.Object({ day: Day, bytes: Type.Number() }), {
    description:
      "one point per day from the oldest version's day to today: the storedBytes of the versions still in the store made up to that day (pruned versions are not counted, gc's freed space is not subtracted)",
  }),
  fullOn: Type.Union([Day, Type.Null()], {
    description: 'the day the store is expected to be full (see fullOnMethod); null: flat or falling usage, too few days, no free space known',
  }),
  fullOnMethod: Type.String(),
  trendBytesPerDay: Type.Union([Type.Number(), Type.Null()], { description: "the fitted line's slope" }),
  error: Type.Optional(Type.String({ description: 'why the store could not be read' })),
  detached: Type.Optional(
    Type.Boolean({ description: "true: a job's external-disk folder with no disk attached now (its versions are on a disk carried away)" }),
  ),
});
export const OverviewRun = Type.Object({
  taskId: Type.String(),
  start: Type.String(),
  durationMs: Ms,
  bytesPerSecond: Type.Union([Type.Number(), Type.Null()], { description: "the guests' logical bytes per second of the run" }),
  downtimeMs: Type.Union([Type.Integer(), Type.Null()], { description: 'the longest a guest of the run was off; null: none stopped' }),
  result: StringEnum(['ok', 'failed'] as const),
  guests: Type.Integer(),
});
export const OverviewRotation = Type.Object({
  day: Day,
  time: Type.String(),
  device: Type.String({ description: "the disk: its label, else its UUID, else the job's spec" }),
  label: Nullable(Type.String()),
  uuid: Nullable(Type.String()),
  spec: Type.String(),
  path: Type.String(),
  job: Type.String(),
  taskId: Type.String(),
  node: Nullable(Type.String({ description: 'the node the disk was attached to (cluster mode); null: this one' })),
});
export const Overview = Type.Object({
  generatedAt: Type.String(),
  node: Type.String(),
  guests: Type.Array(OverviewGuest),
  datastores: Type.Array(OverviewDatastore),
  history: Type.Object({
    days: Type.Integer(),
    since: Type.String(),
    jobs: Type.Array(Type.Object({ id: Type.String(), runs: Type.Array(OverviewRun) })),
  }),
  rotation: Type.Array(OverviewRotation, { description: 'which external disk each job run used, oldest first' }),
});
