/** What the server is built from: the config, the state database and its stores, a hypervisor driver, a clock. */
import type { HypervisorConfig, HypervisorDriver, Seams } from '../core/index.js';
import type { StorageMap } from '../guests/index.js';
import type { ClusterConfig } from '../targets/index.js';
import type { S3StoreSettings } from '../datastore/index.js';
import type { BootTestSettings, JobStore, MailConfig, StateDb, StopJournal, TaskStore, WebhookSettings } from '../jobs/index.js';
import type { TaskRunner } from './runner.js';

/** The part of coldvault's config file the server reads (the CLI's config is a superset). */
export interface ServerConfig {
  node: string;
  stateDir: string;
  guestsDir: string;
  storages: StorageMap;
  /** disks outside the storages that jobs may back up (config `allowDiskPaths`) */
  allowDiskPaths?: readonly string[];
  /** datastore name -> folder */
  datastores: Record<string, string>;
  /** a configured S3 datastore's settings by name (jobs may name one as their store); undefined for any other name */
  s3Stores?: (name: string) => S3StoreSettings | undefined;
  /** the configured S3 datastores by name -> `s3://BUCKET/PREFIX/` (listed beside the folders; no credentials) */
  s3StoreUrls?: Record<string, string>;
  zstdLevel: number;
  mail?: MailConfig;
  /** jobs' webhook reports: tries, timeout, backoff (config `webhook`) */
  webhook?: WebhookSettings;
  /** jobs' boot tests: QEMU's accelerators and how many at once (config `bootTest`) */
  bootTest?: BootTestSettings;
  /** PEM files; with them the server speaks HTTPS and the session cookie is Secure */
  tls?: { cert: string; key: string };
  allowInsecureListen?: boolean;
  /** idle hours after which a web session ends (default 12) */
  sessionIdleHours?: number;
  /** hours after the login at which a web session ends, used or not (default 12) */
  sessionMaxHours?: number;
  /** login attempts let through per client address and from all addresses together in a window (default 5, 60, 60 s) */
  loginLimit?: { perAddress?: number; global?: number; windowSeconds?: number };
  /** the reverse proxies whose X-Forwarded-For is believed: false (default: the client is the TCP peer),
   * a list of their addresses or CIDRs, or true (every peer: only when nothing else can reach the port) */
  trustProxy?: boolean | string[];
  /** folders whose scripts the API may set as a job's hook or script before / after (default /etc/coldvault) */
  scriptDirs?: string[];
  /** folders whose key files (and passphrase files) the API may set as a job's `encrypt` (default /etc/coldvault/keys; paths.ts) */
  keyDirs?: string[];
  /** seconds without a request after which the server aborts an upload (cluster push; default 300) */
  uploadIdleSeconds?: number;
  /** cluster mode: per configured datastore, the external disks a sending node may have mounted on its folder (store-devices.ts) */
  storeDevices?: Record<string, string[]>;
  /** the ring (`cluster.nodes`): cluster-mode pushes, sync sources, the Restore tab's nodes */
  cluster?: ClusterConfig;
  /** the hypervisor driver's settings: a live restore needs the qemu driver (its QMP sockets, `accel`) */
  hypervisor?: HypervisorConfig;
}

export interface ServerState {
  db: StateDb;
  jobs: JobStore;
  tasks: TaskStore;
  journal: StopJournal;
}

/** Milliseconds since the epoch; injectable so tests can expire sessions and tokens. */
export type Clock = () => number;

export interface ServerDeps {
  config: ServerConfig;
  state: ServerState;
  driver: HypervisorDriver;
  clock?: Clock;
  /** runs jobs, restores and verifies as tasks; pass the scheduler's so both share one path */
  runner?: TaskRunner;
  /** the web UI's folder (default: `ui/` beside this module; null: none) */
  uiDir?: string | null;
  /** Fastify's request log (pino), off by default */
  logger?: boolean;
  /** the clock and checkpoints of the datastores uploads write (tests of races: core/seams.ts) */
  storeSeams?: Seams;
}

export const DEFAULT_SCRIPT_DIRS = ['/etc/coldvault'];
export const DEFAULT_KEY_DIRS = ['/etc/coldvault/keys'];
export const SESSION_IDLE_HOURS = 12;
export const SESSION_MAX_HOURS = 12;
export const UPLOAD_IDLE_SECONDS = 300;
