/**
 * The job: what the seed's "new job" form holds. Validated here once; everything else trusts it.
 * JSON shape (also the API's): {id, node?, store, device?, vmid: ["101"] | all: true, exclude,
 * days: ["mon", ...], at: "HH:MM", schedule? (cron), keep, mode: "stop" | "cluster", bwlimit (MB/s), mailto, mailNotification,
 * scriptBefore, scriptAfter, hook, stopTimeout (s), forceStop, lockWait (min), compress, enabled,
 * snapshot: "auto" | "off", fullEvery (days: a full read after that long with changed-extent
 * nightlies, default 7)}.
 * `schedule` is a Proxmox VE calendar event or a 5-field cron expression (schedule/); it wins over days + at.
 * `device` names one external disk, or several rotated disks separated by commas (`UUID=a,UUID=b`);
 * `deviceDatastoreId` lists the datastores those disks were bound to, one per disk, in the same way.
 * `mode: cluster`: the guests are stopped and started as in stop mode, and the version is pushed to
 * the datastore named `store` on the previous node of the config's ring (targets/remote/cluster.ts),
 * at most `bwlimit` MB/s; with `device`, that node mounts the disk on that store for the run.
 * `snapshot` (default auto): cold snapshots of the disks while the guest is off, so that it runs again
 * before they are read (disks on filesystems without reflink are read with the guest off, as with off).
 * `kind` (default backup): a sync job (kind "sync", `from: "NODE:STORE"`) pulls the versions `store`
 * lacks from datastore STORE on cluster node NODE (jobs/sync-run.ts); its guests: vmid or all (every
 * guest there, but exclude); keep, device, schedule and mail as for a backup job.
 * `encrypt` (issue 13, backup jobs in stop and cluster mode): `{keyFile, passphraseFile?}`, absolute
 * paths, never key material: every version the job makes is encrypted with the key in `keyFile`
 * (made by `coldvault key create`). The key is loaded once per run, before any guest is touched
 * (job-key.ts); a key file with a passphrase is opened with the first line of `passphraseFile`, else
 * with COLDVAULT_KEY_PASSPHRASE of the process that runs the job (`serve`, `job run`); one made with
 * `--kdf none` needs neither. A sync job copies versions as they are (encrypted ones stay encrypted) and
 * takes no `encrypt`. Who may name which key file: the CLI (root on the node) any path; the API only
 * paths inside the config's `keyDirs` (default /etc/coldvault/keys), symlinks resolved, or the path
 * the job already has (server/paths.ts checkKeyPath).
 * `bootTest` (backup jobs into a folder or an S3 datastore of this node): after the job's guests are
 * backed up, each new version is booted in isolation (pipeline/boot-test, jobs/boot-tests.ts) and must
 * give its signal within `bootTestTimeout` seconds (default 300): a serial line matching
 * `bootTestExpect` (default a login prompt). A failed boot test never fails the backup; it is reported.
 * `objectLockDays` (backup jobs into an S3 datastore made with Object Lock, issue 14): the versions
 * the job makes are kept under COMPLIANCE retention that many days, at least as long as the
 * datastore's own `--object-lock-days` (a job may lengthen it, never shorten it: pipeline/s3-target.ts).
 * `webhook` (issue 16): `{url, secret?, notification: "always" | "failure", topic?}`, a JSON POST of the
 * job's result when it ends, beside the mail (jobs/notify: the rules for the URL and the secret).
 */
import { ColdvaultError, isGuestId } from '../core/index.js';
import { DEFAULT_FULL_EVERY_DAYS, parseSyncSource } from '../pipeline/index.js';
import { parseWebhook, type JobWebhook } from './notify/index.js';
import { parseSchedule } from './schedule/index.js';

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface Job {
  id: string;
  node?: string;
  store: string;
  device?: string;
  vmid: string[];
  all: boolean;
  exclude: string[];
  days: Weekday[];
  at: string;
  schedule?: string;
  mode: 'stop' | 'cluster';
  /** cluster mode: MiB/s the push may use at most (none: the link's speed) */
  bwlimit?: number;
  /** S3 datastore with Object Lock: days the job's versions are kept immutable (at least the datastore's) */
  objectLockDays?: number;
  mailto: string[];
  mailNotification: 'always' | 'failure';
  keep?: number;
  scriptBefore?: string;
  scriptAfter?: string;
  hook?: string;
  /** seconds to wait for the ACPI shutdown (vzdump's stopwait, default 10 min) */
  stopTimeout: number;
  /** hard stop when the shutdown times out (otherwise that guest's backup fails, guest left running) */
  forceStop: boolean;
  /** minutes to wait for a guest locked by another run (vzdump's lockwait, default 180) */
  lockWait: number;
  compress: 'zstd' | 'none';
  enabled: boolean;
  /** the job may initialise an empty external device (never a disk that holds anything) */
  initDevice: boolean;
  /** the datastore the job's external device must hold (bound at its first run) */
  deviceDatastoreId?: string;
  /** cold snapshots (auto: where every disk of a guest can have one) or none (off: the guest is off for the read) */
  snapshot: 'auto' | 'off';
  /** days after a full read when a changed-extent nightly reads everything again (0: every run) */
  fullEvery: number;
  /** backup (the guests of this node) or sync (pull versions from `from`) */
  kind: 'backup' | 'sync';
  /** a sync job's source: `NODE:STORE` */
  from?: string;
  /** boot each new version in isolation after the backup (jobs/boot-tests.ts) */
  bootTest: boolean;
  /** the boot test's serial console pattern (default: a login prompt) */
  bootTestExpect?: string;
  /** seconds the boot test waits for the signal (default 300) */
  bootTestTimeout?: number;
  /** encrypt the versions with this key file (paths only: the job never holds the key or its passphrase) */
  encrypt?: JobEncryption;
  /** a JSON POST of the result when the job ends (jobs/notify); its secret is never shown */
  webhook?: JobWebhook;
}

/** A job's encryption setting: where its key file and, optionally, the key's passphrase are (absolute paths). */
export interface JobEncryption {
  keyFile: string;
  /** a file whose first line is the key file's passphrase (else COLDVAULT_KEY_PASSPHRASE; none for `--kdf none`) */
  passphraseFile?: string;
}

const ENCRYPT_KEYS = ['keyFile', 'passphraseFile'];

const JOB_KEYS = new Set<string>([
  'id',
  'node',
  'store',
  'device',
  'vmid',
  'all',
  'exclude',
  'days',
  'at',
  'schedule',
  'mode',
  'mailto',
  'mailNotification',
  'keep',
  'scriptBefore',
  'scriptAfter',
  'hook',
  'stopTimeout',
  'forceStop',
  'lockWait',
  'compress',
  'enabled',
  'initDevice',
  'deviceDatastoreId',
  'snapshot',
  'fullEvery',
  'bwlimit',
  'objectLockDays',
  'kind',
  'from',
  'encrypt',
  'bootTest',
  'bootTestExpect',
  'bootTestTimeout',
  'webhook',
]);

export const JOB_ID = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

function invalid(message: string): ColdvaultError {
  return new ColdvaultError('JOB_INVALID', message);
}

/** Builds a valid Job from loose input (CLI flags, API JSON, a stored row); throws JOB_INVALID. */
export function validateJob(input: Record<string, unknown>): Job {
  const unknown = Object.keys(input).filter((k) => !JOB_KEYS.has(k) && input[k] !== undefined);
  if (unknown.length > 0) throw invalid(`unknown job field(s): ${unknown.join(', ')}`);
  const id = str(input.id, 'id');
  if (!id || !JOB_ID.test(id)) throw invalid(`job id '${id ?? ''}' must start with a letter and hold only letters, digits, '_', '.', '-' (up to 64)`);
  const store = str(input.store, 'store');
  if (!store) throw invalid(`job '${id}': a target store (folder) is required`);
  const job: Job = {
    id,
    store,
    node: str(input.node, 'node'),
    device: str(input.device, 'device'),
    vmid: idList(input.vmid, 'vmid'),
    all: bool(input.all, false),
    exclude: idList(input.exclude, 'exclude'),
    days: dayList(input.days),
    at: time(input.at),
    schedule: str(input.schedule, 'schedule'),
    mode: mode(input.mode),
    mailto: list(input.mailto),
    mailNotification: notification(input.mailNotification),
    keep: optInt(input.keep, 'keep', 1),
    scriptBefore: str(input.scriptBefore, 'scriptBefore'),
    scriptAfter: str(input.scriptAfter, 'scriptAfter'),
    hook: str(input.hook, 'hook'),
    stopTimeout: optInt(input.stopTimeout, 'stopTimeout', 1) ?? 600,
    forceStop: bool(input.forceStop, false),
    lockWait: optInt(input.lockWait, 'lockWait', 0) ?? 180,
    compress: compress(input.compress),
    enabled: bool(input.enabled, true),
    initDevice: bool(input.initDevice, false),
    deviceDatastoreId: str(input.deviceDatastoreId, 'deviceDatastoreId'),
    snapshot: snapshotMode(input.snapshot),
    fullEvery: optInt(input.fullEvery, 'fullEvery', 0) ?? DEFAULT_FULL_EVERY_DAYS,
    bwlimit: optPositive(input.bwlimit, 'bwlimit'),
    objectLockDays: optInt(input.objectLockDays, 'objectLockDays', 1),
    kind: jobKind(input.kind),
    from: str(input.from, 'from'),
    encrypt: encryption(input.encrypt),
    bootTest: bool(input.bootTest, false),
    bootTestExpect: pattern(input.bootTestExpect, 'bootTestExpect'),
    bootTestTimeout: optInt(input.bootTestTimeout, 'bootTestTimeout', 1),
    webhook: parseWebhook(input.webhook, id),
  };
  checkSyncSource(job);
  if (job.bwlimit !== undefined && job.mode !== 'cluster') throw invalid(`job '${id}': bwlimit goes with mode cluster (a push over the network)`);
  if (job.mode === 'cluster' && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(job.store)) {
    throw invalid(`job '${id}': in cluster mode, store is the name of a datastore on the receiving node (its config 'datastores'), not '${job.store}'`);
  }
  if (job.objectLockDays !== undefined && (job.kind === 'sync' || job.mode === 'cluster' || job.objectLockDays > 36_500)) {
    throw invalid(`job '${id}': objectLockDays (1 to 36500) goes with a backup job into an S3 datastore of this node`);
  }
  if (job.bootTest && (job.kind === 'sync' || job.mode === 'cluster'))
    throw invalid(`job '${id}': bootTest goes with a backup job into a datastore of this node`);
  if (job.mode === 'cluster' && job.kind === 'sync') throw invalid(`job '${id}': a sync job pulls into a local store; mode cluster is for backup jobs`);
  if (job.initDevice && !job.device) throw invalid(`job '${id}': initDevice needs an external device`);
  checkDeviceList(job);
  if (job.all === job.vmid.length > 0) throw invalid(`job '${id}': give either guest ids (vmid) or all, not both, not neither`);
  if (!job.all && job.exclude.length > 0) throw invalid(`job '${id}': exclude only goes with all`);
  if (job.schedule) parseSchedule(job.schedule);
  for (const addr of job.mailto) if (!/^[^\s@]+@[^\s@]+$/.test(addr)) throw invalid(`job '${id}': '${addr}' is not a mail address`);
  return job;
}

/** The job's external disks: one, or several that are rotated (`device` lists them separated by commas). */
export function deviceSpecs(job: Pick<Job, 'device'>): string[] {
  return (job.device ?? '')
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean);
}

/** The datastores the job's disks are bound to so far, one per disk met (at most one per listed disk). */
export function boundDatastores(job: Pick<Job, 'deviceDatastoreId'>): string[] {
  return (job.deviceDatastoreId ?? '')
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean);
}

function checkDeviceList(job: Job): void {
  const specs = deviceSpecs(job);
  if (job.device !== undefined && specs.length !== job.device.split(',').length) throw invalid(`job '${job.id}': device '${job.device}' has an empty entry`);
  if (new Set(specs).size !== specs.length) throw invalid(`job '${job.id}': device '${job.device}' names a disk twice`);
  const bound = boundDatastores(job);
  if (bound.length > Math.max(1, specs.length)) throw invalid(`job '${job.id}': ${bound.length} bound datastores for ${specs.length} disk(s)`);
}

function str(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw invalid(`${name} must be a string`);
  return v;
}

/** A regular expression (checked here, so a job never fails later on its pattern). */
function pattern(v: unknown, name: string): string | undefined {
  const value = str(v, name);
  if (value === undefined) return undefined;
  try {
    new RegExp(value, 'm');
  } catch (err) {
    throw invalid(`${name} '${value}' is not a regular expression: ${(err as Error).message}`);
  }
  return value;
}

/** A value as the admin wrote it: strings as they are, anything else as JSON (never "[object Object]"). */
function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v) ?? typeof v;
}

function list(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  const items = Array.isArray(v) ? v : text(v).split(/[,\s]+/);
  return items.map((x) => text(x).trim()).filter(Boolean);
}

function idList(v: unknown, name: string): string[] {
  const ids = list(v);
  for (const id of ids) if (!isGuestId(id)) throw invalid(`${name}: '${id}' is not a guest id (100 to 999999999)`);
  return [...new Set(ids)];
}

function dayList(v: unknown): Weekday[] {
  const days = list(v).map((d) => d.toLowerCase().slice(0, 3));
  for (const d of days) if (!(WEEKDAYS as readonly string[]).includes(d)) throw invalid(`days: '${d}' is not one of ${WEEKDAYS.join(',')}`);
  return WEEKDAYS.filter((d) => days.includes(d));
}

function time(v: unknown): string {
  const t = v === undefined || v === null || v === '' ? '00:00' : text(v);
  const m = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(t);
  if (!m) throw invalid(`at: '${t}' is not a time HH:MM`);
  return `${(m[1] as string).padStart(2, '0')}:${m[2]}`;
}

function bool(v: unknown, dflt: boolean): boolean {
  if (v === undefined || v === null || v === '') return dflt;
  if (typeof v === 'boolean') return v;
  if (['1', 'true', 'yes', 'on'].includes(text(v))) return true;
  if (['0', 'false', 'no', 'off'].includes(text(v))) return false;
  throw invalid(`'${text(v)}' is not a yes/no value`);
}

function optInt(v: unknown, name: string, min: number): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : /^\d+$/.test(text(v)) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min) throw invalid(`${name}: '${text(v)}' must be an integer >= ${min}`);
  return n;
}

function mode(v: unknown): 'stop' | 'cluster' {
  if (v === undefined || v === null || v === '' || v === 'stop') return 'stop';
  if (v === 'cluster') return 'cluster';
  throw invalid(`mode: '${text(v)}' must be stop or cluster`);
}

/** A positive number (MB/s: fractions allowed), or undefined. */
function optPositive(v: unknown, name: string): number | undefined {
  if (v === undefined || v === null || v === '' || v === 0 || v === '0') return undefined;
  const n = typeof v === 'number' ? v : /^\d+(\.\d+)?$/.test(text(v)) ? Number(v) : NaN;
  if (!Number.isFinite(n) || n <= 0) throw invalid(`${name}: '${text(v)}' must be a positive number (MB/s)`);
  return n;
}

function notification(v: unknown): 'always' | 'failure' {
  if (v === undefined || v === null || v === '' || v === 'always') return 'always';
  if (v === 'failure') return 'failure';
  throw invalid(`mailNotification: '${text(v)}' must be always or failure`);
}

function compress(v: unknown): 'zstd' | 'none' {
  if (v === undefined || v === null || v === '' || v === 'zstd') return 'zstd';
  if (v === 'none') return 'none';
  throw invalid(`compress: '${text(v)}' must be zstd or none`);
}

function jobKind(v: unknown): 'backup' | 'sync' {
  if (v === undefined || v === null || v === '' || v === 'backup') return 'backup';
  if (v === 'sync') return 'sync';
  throw invalid(`kind: '${text(v)}' must be backup or sync`);
}

/** `{keyFile, passphraseFile?}` with absolute paths, or undefined (no encryption). */
function encryption(v: unknown): JobEncryption | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`encrypt must be an object {keyFile, passphraseFile?}, not ${text(v)}`);
  const fields = v as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !ENCRYPT_KEYS.includes(k) && fields[k] !== undefined);
  if (unknown.length > 0) throw invalid(`encrypt: unknown field(s) ${unknown.join(', ')} (only keyFile and passphraseFile: paths, never a key or passphrase)`);
  const keyFile = absolutePath(fields.keyFile, 'encrypt.keyFile');
  if (keyFile === undefined) throw invalid('encrypt.keyFile is required: the absolute path of a key file (coldvault key create)');
  const passphraseFile = absolutePath(fields.passphraseFile, 'encrypt.passphraseFile');
  return passphraseFile === undefined ? { keyFile } : { keyFile, passphraseFile };
}

function absolutePath(v: unknown, name: string): string | undefined {
  const path = str(v, name);
  if (path !== undefined && (!path.startsWith('/') || path.includes('\0'))) throw invalid(`${name}: '${path}' must be an absolute path`);
  return path;
}

/** A sync job names its source as NODE:STORE; a backup job has none. */
function checkSyncSource(job: Job): void {
  if (job.kind === 'sync' && job.encrypt)
    throw invalid(`job '${job.id}': encrypt is for backup jobs; a sync job copies versions as they are (encrypted ones stay encrypted) and needs no key`);
  if (job.kind === 'backup' && job.from) throw invalid(`job '${job.id}': from goes only with kind sync`);
  if (job.kind === 'sync' && (job.hook || job.scriptBefore || job.scriptAfter))
    throw invalid(`job '${job.id}': hook and scripts are for backup jobs, not sync jobs`);
  if (job.kind === 'sync' && !(job.from && parseSyncSource(job.from))) {
    throw invalid(
      `job '${job.id}': a sync job needs from: 'NODE:STORE' (a node of cluster.nodes, a datastore there), a folder datastore's absolute path or an S3 datastore's name, got '${job.from ?? ''}'`,
    );
  }
}

/** `auto` (the default) or `off`: cold snapshots of the disks (jobs/cold-snapshots.ts). */
export function snapshotMode(v: unknown): 'auto' | 'off' {
  if (v === undefined || v === null || v === '' || v === 'auto') return 'auto';
  if (v === 'off') return 'off';
  throw invalid(`snapshot: '${text(v)}' must be auto or off`);
}
