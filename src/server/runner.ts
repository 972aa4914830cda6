/**
 * The TaskRunner: starts jobs, restores and verifies in this process, in the background, each as a
 * task (id, status, log in the state database), and keeps the live progress of the ones running for
 * GET /status. `coldvault serve` hands the same runner to the scheduler, so a job started by the API
 * and one started by its schedule take the same path (runJob). `close()` aborts what runs (a job starts
 * the guests it stopped again) and waits for the end.
 */
import { describeError, type HypervisorDriver, isColdvaultError, type ProgressListener, type TransferProgress } from '../core/index.js';
import { DeviceSightings, runJob, type Job, type JobResult, type TaskHandle } from '../jobs/index.js';
import { WorkerPool } from '../pipeline/index.js';
import type { ServerConfig, ServerState } from './deps.js';

export interface RunningTask {
  taskId: string;
  type: string;
  jobId: string | null;
  progress: TransferProgress | null;
}

/** What a background task does with its log, a progress listener, the abort signal and a worker pool (made on first use). */
export type TaskWork = (ctx: {
  task: TaskHandle;
  onProgress: ProgressListener;
  signal: AbortSignal;
  pool: () => WorkerPool;
}) => Promise<{ ok: boolean; result?: unknown }>;

export interface Started<T> {
  taskId: string;
  done: Promise<T>;
}

export class TaskRunner {
  private readonly running = new Map<string, RunningTask & { done: Promise<unknown> }>();
  private readonly abort = new AbortController();

  /** what jobs see on their external disks (the Restore tab's disks) */
  private readonly sightings: DeviceSightings;

  constructor(private readonly env: { config: ServerConfig; state: ServerState; driver: HypervisorDriver }) {
    this.sightings = new DeviceSightings(env.state.db);
  }

  /** Tasks of this process that are running, with their latest progress. */
  list(): RunningTask[] {
    return [...this.running.values()].map(({ taskId, type, jobId, progress }) => ({ taskId, type, jobId, progress }));
  }

  isJobRunning(jobId: string): boolean {
    return [...this.running.values()].some((r) => r.jobId === jobId) || this.env.state.tasks.runningForJob(jobId).length > 0;
  }

  /** Starts a job run for `startedBy` (a token, the web login, the scheduler); resolves as soon as its task exists. */
  async startJob(job: Job, startedBy: string, options: { full?: boolean } = {}): Promise<Started<JobResult>> {
    const { config, state, driver } = this.env;
    let entry: (RunningTask & { done: Promise<unknown> }) | undefined;
    const done = runJob(
      job,
      {
        node: job.node ?? config.node,
        stateDir: config.stateDir,
        guestsDir: config.guestsDir,
        storages: config.storages,
        allowDiskPaths: config.allowDiskPaths,
        zstdLevel: config.zstdLevel,
        tasks: state.tasks,
        journal: state.journal,
        jobs: state.jobs,
        driver,
        mail: config.mail,
        webhook: config.webhook,
        sightings: this.sightings,
        bootTest: config.bootTest,
        cluster: config.cluster,
        s3Stores: config.s3Stores,
        signal: this.abort.signal,
        startedBy,
        full: options.full,
        onProgress: (p) => {
          if (entry) entry.progress = p;
        },
      },
      (task) => {
        entry = this.track(task.id, job.kind, job.id);
      },
    );
    if (!entry)
      return done.then(() => {
        throw new Error(`job ${job.id} did not start a task`);
      });
    const { taskId } = entry;
    entry.done = done.catch(() => undefined).finally(() => this.running.delete(taskId));
    return { taskId, done };
  }

  /** Starts `work` as a task of `type` for `startedBy`; the task ends ok or failed with what work returns or throws. */
  startTask(type: string, summary: string, work: TaskWork, startedBy: string): Started<boolean> {
    const task = this.env.state.tasks.create(type, { node: this.env.config.node, summary, startedBy });
    const entry = this.track(task.id, type, null);
    const done = this.execute(task, entry, work).finally(() => this.running.delete(task.id));
    entry.done = done;
    return { taskId: task.id, done };
  }

  async close(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }

  private track(taskId: string, type: string, jobId: string | null): RunningTask & { done: Promise<unknown> } {
    const entry = { taskId, type, jobId, progress: null, done: Promise.resolve() };
    this.running.set(taskId, entry);
    return entry;
  }

  private async execute(task: TaskHandle, entry: RunningTask, work: TaskWork): Promise<boolean> {
    let pool: WorkerPool | undefined;
    try {
      const { ok, result } = await work({
        task,
        pool: () => (pool ??= new WorkerPool()),
        signal: this.abort.signal,
        onProgress: (p) => {
          entry.progress = p;
        },
      });
      task.finish(ok, result);
      return ok;
    } catch (err) {
      task.error(`TASK ERROR: ${describeError(err)}`);
      task.finish(false, { error: describeError(err), code: isColdvaultError(err) ? err.code : undefined });
      return false;
    } finally {
      await pool?.close();
    }
  }
}
