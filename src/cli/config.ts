/**
 * The config file (`--config FILE` or `COLDVAULT_CONFIG`), JSON: defaults for every command.
 *   { "node": "pve1", "stateDir": "/var/lib/coldvault", "guestsDir": "/etc/pve/qemu-server",
 *     "storages": { "local": "/var/lib/vz" }, "datastores": { "usb1": "/mnt/usb1" },
 *     "allowDiskPaths": ["/dev/disk/by-id/*"],
 *     "cluster": { "nodes": [{ "name": "pve1", "url": "https://10.0.0.1:8007", "fingerprint": "AB:..", "token": ".." }, ...] } }
 * Command-line flags win over the file; `--storage id=dir` adds to or overrides `storages`.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { ColdvaultError, type HypervisorConfig } from '../core/index.js';
import { checkDiskPathPattern } from '../guests/index.js';
import { checkWebhookSettings, type MailConfig, type WebhookSettings } from '../jobs/index.js';
import { checkClusterConfig, type ClusterConfig } from '../targets/index.js';
import { list, str, type Parsed } from './args.js';
import { checkS3Datastore, type S3DatastoreConfig } from './s3-config.js';

export interface CliConfig {
  node: string;
  stateDir: string;
  guestsDir: string;
  storages: Record<string, string>;
  /** disks outside the storages that may be backed up: absolute path patterns, `*` `?` `**` (src/guests/disk-path-globs.ts) */
  allowDiskPaths?: string[];
  /** folder datastores by name */
  datastores: Record<string, string>;
  /** datastores in S3 buckets by name (config `datastores` entries of type "s3": s3-config.ts) */
  s3Datastores: Record<string, S3DatastoreConfig>;
  zstdLevel: number;
  hypervisor?: HypervisorConfig;
  mail?: MailConfig;
  /** jobs' webhook reports: tries, per-try timeout and first backoff (jobs/notify; defaults 4, 10 s, 1 s) */
  webhook?: WebhookSettings;
  scheduler?: { graceMinutes?: number; tickSeconds?: number };
  /** how many finished tasks (and their logs) to keep */
  taskKeep?: number;
  /** `coldvault serve`: HOST:PORT of the API and web UI (default 127.0.0.1:8080) */
  listen?: string;
  /** `coldvault serve`: PEM files, or "auto": the self-signed certificate serve makes (used beyond loopback when unset) */
  tls?: { cert: string; key: string } | 'auto';
  /** `coldvault serve`: allow plain HTTP on a non-loopback address (not recommended) */
  allowInsecureListen?: boolean;
  /** `coldvault serve`: a web session ends after this many idle hours (default 12) */
  sessionIdleHours?: number;
  /** `coldvault serve`: folders whose scripts the API may set as a job's hook / script before / after (default /etc/coldvault) */
  scriptDirs?: string[];
  /** `coldvault serve`: folders whose key files and passphrase files the API may set as a job's `encrypt` (default /etc/coldvault/keys) */
  keyDirs?: string[];
  /** `coldvault serve`: hours after the login at which a web session ends, used or not (default 12) */
  sessionMaxHours?: number;
  /** `coldvault serve`: login attempts per client address and in total per window (default 5, 60, 60 s) */
  loginLimit?: { perAddress?: number; global?: number; windowSeconds?: number };
  /** `coldvault serve`: reverse proxies whose X-Forwarded-For is believed (default false; a list of addresses / CIDRs, or true) */
  trustProxy?: boolean | string[];
  /** `coldvault serve`: seconds without a request after which a node's push (upload) is aborted (default 300) */
  uploadIdleSeconds?: number;
  /** `coldvault serve`: per datastore, the external disks a sending node may have mounted on its folder (cluster mode; server/store-devices.ts) */
  storeDevices?: Record<string, string[]>;
  /** boot tests (`coldvault boot-test`, job `bootTest`): QEMU's accelerators ('kvm:tcg' default, 'tcg' without KVM) and how many at once on this host (default 2) */
  bootTest?: BootTestConfig;
  /** cluster mode: the ring, `{nodes: [{name, url, fingerprint, token | tokenFile}]}` in ring order (targets/remote/cluster.ts) */
  cluster?: ClusterConfig;
}

export interface BootTestConfig {
  accel?: string;
  maxConcurrent?: number;
}

const DEFAULTS: CliConfig = {
  node: hostname(),
  stateDir: '/var/lib/coldvault',
  guestsDir: '/etc/pve/qemu-server',
  storages: { local: '/var/lib/vz' },
  datastores: {},
  s3Datastores: {},
  zstdLevel: 1,
};

const KNOWN_KEYS = new Set([
  'node',
  'stateDir',
  'guestsDir',
  'storages',
  'datastores',
  'zstdLevel',
  'hypervisor',
  'mail',
  'scheduler',
  'taskKeep',
  'listen',
  'tls',
  'allowInsecureListen',
  'sessionIdleHours',
  'scriptDirs',
  'keyDirs',
  'allowDiskPaths',
  'sessionMaxHours',
  'loginLimit',
  'trustProxy',
  'uploadIdleSeconds',
  'storeDevices',
  'cluster',
  'bootTest',
  'webhook',
]);

export function loadConfig(p: Parsed): CliConfig {
  const file = str(p, 'config') ?? process.env.COLDVAULT_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
  const config: CliConfig = {
    ...DEFAULTS,
    ...fromFile,
    storages: { ...(fromFile.storages ?? DEFAULTS.storages) },
    datastores: { ...(fromFile.datastores ?? {}) },
    s3Datastores: { ...(fromFile.s3Datastores ?? {}) },
  };
  for (const entry of list(p, 'storage')) {
    const eq = entry.indexOf('=');
    if (eq <= 0 || eq === entry.length - 1) throw new ColdvaultError('USAGE', `--storage '${entry}': expected <id>=<dir>`);
    config.storages[entry.slice(0, eq)] = resolve(entry.slice(eq + 1));
  }
  const guestsDir = str(p, 'guests-dir');
  if (guestsDir) config.guestsDir = resolve(guestsDir);
  const stateDir = str(p, 'state-dir') ?? process.env.COLDVAULT_STATE_DIR;
  if (stateDir) config.stateDir = resolve(stateDir);
  return config;
}

function readConfigFile(file: string): Partial<CliConfig> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ColdvaultError('CONFIG_INVALID', `config file '${file}' cannot be read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ColdvaultError('CONFIG_INVALID', `config file '${file}' must hold a JSON object`);
  }
  const unknown = Object.keys(parsed).filter((k) => !KNOWN_KEYS.has(k));
  if (unknown.length > 0) throw new ColdvaultError('CONFIG_INVALID', `config file '${file}': unknown key(s) ${unknown.join(', ')}`);
  checkMap(parsed, 'storages', file);
  const stores = splitDatastores(parsed, file);
  checkDiskPathPatterns(parsed, file);
  checkFolderList(parsed, 'keyDirs', file);
  checkTls(parsed, file);
  checkBootTest(parsed, file);
  const webhook = (parsed as { webhook?: unknown }).webhook;
  if (webhook !== undefined) checkWebhookSettings(webhook, `config file '${file}'`);
  const cluster = (parsed as { cluster?: unknown }).cluster;
  if (cluster !== undefined) return { ...parsed, ...stores, cluster: checkClusterConfig(cluster, `config file '${file}'`) };
  return { ...parsed, ...stores };
}

/** `datastores`: folder paths by name, and S3 datastores (objects of type "s3") apart. */
function splitDatastores(parsed: object, file: string): Pick<CliConfig, 'datastores' | 's3Datastores'> {
  const value = (parsed as Record<string, unknown>).datastores ?? {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ColdvaultError('CONFIG_INVALID', `config file '${file}': 'datastores' must map names to folder paths or S3 datastores`);
  }
  const out: Pick<CliConfig, 'datastores' | 's3Datastores'> = { datastores: {}, s3Datastores: {} };
  for (const [name, v] of Object.entries(value)) {
    if (typeof v === 'string') out.datastores[name] = v;
    else out.s3Datastores[name] = checkS3Datastore(name, v, file);
  }
  return out;
}

function checkTls(parsed: object, file: string): void {
  const tls = (parsed as Record<string, unknown>).tls;
  if (tls === undefined || tls === 'auto') return;
  const files = typeof tls === 'object' && tls !== null ? (tls as Record<string, unknown>) : {};
  if (typeof files.cert !== 'string' || typeof files.key !== 'string' || Object.keys(files).length !== 2) {
    throw new ColdvaultError('CONFIG_INVALID', `config file '${file}': 'tls' must be {"cert": "/path/cert.pem", "key": "/path/key.pem"} or "auto"`);
  }
}

function checkBootTest(parsed: object, file: string): void {
  const value = (parsed as Record<string, unknown>).bootTest;
  if (value === undefined) return;
  const v = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : { bad: true };
  const accelOk = v.accel === undefined || (typeof v.accel === 'string' && /^(kvm|tcg)(:(kvm|tcg))?$/.test(v.accel));
  const maxOk = v.maxConcurrent === undefined || (Number.isInteger(v.maxConcurrent) && (v.maxConcurrent as number) >= 1);
  if (!accelOk || !maxOk || Object.keys(v).some((k) => k !== 'accel' && k !== 'maxConcurrent')) {
    throw new ColdvaultError('CONFIG_INVALID', `config file '${file}': 'bootTest' must be {"accel": "kvm:tcg" | "tcg", "maxConcurrent": N >= 1}`);
  }
}

function checkMap(parsed: object, key: string, file: string): void {
  const value = (parsed as Record<string, unknown>)[key];
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Object.values(value).some((v) => typeof v !== 'string')) {
    throw new ColdvaultError('CONFIG_INVALID', `config file '${file}': '${key}' must map ids to folder paths`);
  }
}

function checkFolderList(parsed: object, key: string, file: string): void {
  const value = (parsed as Record<string, unknown>)[key];
  if (value === undefined) return;
  if (!Array.isArray(value) || value.some((d) => typeof d !== 'string' || !d.startsWith('/'))) {
    throw new ColdvaultError('CONFIG_INVALID', `config file '${file}': '${key}' must be a list of absolute folder paths`);
  }
}

function checkDiskPathPatterns(parsed: object, file: string): void {
  const value = (parsed as Record<string, unknown>).allowDiskPaths;
  if (value === undefined) return;
  if (!Array.isArray(value)) throw new ColdvaultError('CONFIG_INVALID', `config file '${file}': 'allowDiskPaths' must be a list of absolute path patterns`);
  for (const pattern of value) checkDiskPathPattern(pattern, `config file '${file}': allowDiskPaths`);
}

/**
 * `--store` takes a folder or the name of a configured datastore. A command that works on folders
 * only (jobs, sync, serve's routes, for now) refuses an S3 datastore by name, instead of taking the
 * name for a folder.
 */
export function storeDir(config: CliConfig, value: string): string {
  if (Object.hasOwn(config.s3Datastores, value) || value.startsWith('s3://')) {
    throw new ColdvaultError(
      'USAGE',
      `'${value}' is an S3 datastore: this command works on folder datastores (backup, list, restore, verify, prune, protect, gc and catalog take S3 ones)`,
    );
  }
  return resolve(config.datastores[value] ?? value);
}
