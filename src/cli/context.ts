/** What every command gets: parsed flags, the config, a log to stderr, stdout, and store openers. */
import { createTaskLog, type TaskLog } from '../core/log.js';
import { Datastore } from '../datastore/index.js';
import { Catalog } from '../catalog/index.js';
import { WorkerPool } from '../pipeline/index.js';
import { flag, required, type Parsed } from './args.js';
import { loadConfig, storeDir, type CliConfig } from './config.js';
import { ProgressBar } from './progress-bar.js';

export class CommandContext {
  readonly config: CliConfig;
  readonly json: boolean;
  readonly bar = new ProgressBar();
  readonly log: TaskLog;
  private readonly closers: Array<() => unknown> = [];

  constructor(readonly args: Parsed, readonly command: string) {
    this.config = loadConfig(args);
    this.json = flag(args, 'json');
    this.log = createTaskLog(this.bar.sink());
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
    const catalog = await Catalog.open(store);
    this.closers.push(() => catalog.close());
    return { store, catalog };
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
