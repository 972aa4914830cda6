/** What every command gets: parsed flags, the config, a log to stderr, stdout, and store openers. */
import { createTaskLog, type HypervisorDriver, type TaskLog } from '../core/index.js';
import { Datastore, S3Datastore, type S3StoreSettings } from '../datastore/index.js';
import { Catalog, openCachedCatalog } from '../catalog/index.js';
import { WorkerPool } from '../pipeline/index.js';
import { createDriver } from '../guests/hypervisor/index.js';
import { JobStore, openStateDb, StopJournal, TaskStore, type StateDb } from '../jobs/index.js';
import { flag, required, type Parsed } from './args.js';
import { loadConfig, storeDir, type CliConfig } from './config.js';
import { ProgressBar } from './progress-bar.js';
import { s3StoreSettings } from './s3-option.js';

export class CommandContext {
  readonly json: boolean;
  readonly bar = new ProgressBar();
  readonly log: TaskLog;
  private readonly closers: Array<() => unknown> = [];
  private stateCache?: { db: StateDb; jobs: JobStore; tasks: TaskStore; journal: StopJournal };
  private configCache?: CliConfig;

  constructor(
    readonly args: Parsed,
    readonly command: string,
  ) {
    this.json = flag(args, 'json');
    this.log = createTaskLog(this.bar.sink());
  }

  /**
   * The config (file and flags), loaded at first use: a bad config file then fails the command that
   * reads it, while `coldvault doctor` catches it and reports it as a finding.
   */
  get config(): CliConfig {
    this.configCache ??= loadConfig(this.args);
    return this.configCache;
  }

  print(text: string): void {
    this.bar.clear();
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  printJson(value: unknown): void {
    this.print(JSON.stringify(value, null, 2));
  }

  storeDir(): string {
    return storeDir(this.config, required(this.args, 'store', this.command));
  }

  async openStore(): Promise<{ store: Datastore; catalog: Catalog }> {
    const store = await Datastore.open(this.storeDir());
    const catalog = await Catalog.open(store, { log: this.log }); // a damaged catalog: moved aside, WARN, rebuilt
    this.closers.push(() => catalog.close());
    return { store, catalog };
  }

  /** The settings of `--store s3://...` (with --endpoint, --region, credentials from the environment); undefined for a folder. */
  s3Settings(): S3StoreSettings | undefined {
    return s3StoreSettings(this.args, this.config.s3Datastores);
  }

  /** An S3 datastore and its catalog: a local cache in `<stateDir>/catalogs/<datastore id>.sqlite`, rebuilt from the bucket when new. */
  async openS3Store(settings: S3StoreSettings): Promise<{ store: S3Datastore; catalog: Catalog }> {
    const store = await S3Datastore.open(settings);
    this.closers.push(() => store.close());
    const catalog = await openCachedCatalog(store, store.identity.id, this.config.stateDir, this.log);
    this.closers.push(() => catalog.close());
    return { store, catalog };
  }

  /** The state database, jobs, tasks and stop journal of `stateDir`. */
  state(): { db: StateDb; jobs: JobStore; tasks: TaskStore; journal: StopJournal } {
    if (!this.stateCache) {
      const db = openStateDb(this.config.stateDir);
      this.closers.push(() => db.close());
      this.stateCache = { db, jobs: new JobStore(db), tasks: new TaskStore(db, this.config.stateDir, this.config.taskKeep), journal: new StopJournal(db) };
    }
    return this.stateCache;
  }

  driver(): HypervisorDriver {
    return createDriver(this.config.hypervisor);
  }

  pool(): WorkerPool {
    const pool = new WorkerPool();
    this.closers.push(() => pool.close());
    return pool;
  }

  async close(): Promise<void> {
    this.bar.clear();
    for (const close of this.closers.reverse()) await close();
  }
}
