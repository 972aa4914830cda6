/**
 * At the start of `coldvault serve`: the restores-on-the-fly whose process died (a CLI `restore
 * --live` or a serve killed while its live restore task ran) are finished. The restored guest kept
 * running meanwhile; its reads of data not yet copied wait for the version's export to come back.
 * For each journal in `<stateDir>/live-restores/` whose process is gone (pipeline pendingLiveRestores):
 * - its `store` is a datastore this server knows (resolved as the API resolves a store: a configured
 *   name, a configured or a job's folder, a configured S3 datastore) and the version is not
 *   encrypted: a task `restore` "resume live restore to M" finishes it (pipeline resumeLiveRestore:
 *   the version exported again on its socket, each copy resumed (a copy QEMU still runs keeps its
 *   bwlimit) or started again (uncapped: the journal keeps no bwlimit), the pivot, the config
 *   written, the journal removed). Serve stopping
 *   aborts the task; the guest keeps running and the journal stays for the next start.
 * - otherwise (no store recorded: another node's datastore; a store this server does not know or
 *   cannot open; an encrypted version, whose key file serve does not keep): a WARN line naming the
 *   command that finishes it (`coldvault restore --resume-live M ...`).
 */
import { describeError, type TaskLog } from '../core/index.js';
import { Datastore } from '../datastore/index.js';
import { type LiveJournal, pendingLiveRestores, resumeCommand, resumeLiveRestore, s3Source, sourceOf, type SourceRef } from '../pipeline/index.js';
import type { ServerConfig, ServerState } from './deps.js';
import { resolveStore } from './paths.js';
import type { TaskRunner } from './runner.js';
import { openS3 } from './stores.js';

export interface LiveResumeEnv {
  config: ServerConfig;
  state: ServerState;
  runner: TaskRunner;
  /** serve's log (stderr) */
  log: TaskLog;
}

/** Starts a task for each pending live restore serve can finish, WARNs how to finish the others; returns the tasks' ids. */
export async function resumeLiveRestores(env: LiveResumeEnv): Promise<string[]> {
  const taskIds: string[] = [];
  for (const journal of await pendingLiveRestores(env.config.stateDir)) {
    const why = await resumeOne(env, journal).then(
      (taskId) => {
        taskIds.push(taskId);
        return undefined;
      },
      (err: unknown) => describeError(err),
    );
    if (why) env.log.warn(`the live restore to guest ${journal.newId} is not finished (${why}): finish it with ${resumeCommand(journal)}`);
  }
  return taskIds;
}

/** Opens the journal's store and starts the task; rejects with the reason serve leaves it to the admin. */
async function resumeOne(env: LiveResumeEnv, journal: LiveJournal): Promise<string> {
  const { config, runner, log } = env;
  if (!journal.store) throw new Error(`its journal names no datastore of this server (it reads ${journal.source})`);
  const ref = resolveStore(journal.store, config, env.state.jobs);
  const from: SourceRef = ref.kind === 's3' ? { source: s3Source(await openS3(ref, config)) } : { store: await Datastore.open(ref.dir) };
  const source = sourceOf(from);
  const close = (): void => source.close();
  try {
    const manifest = await source.readManifest(journal.guestId, journal.version);
    if (manifest.encryption)
      throw new Error(`version ${journal.version} of guest ${journal.guestId} is encrypted and serve keeps no key file: add --keyfile FILE`);
  } catch (err) {
    close();
    throw err;
  }
  const { taskId } = runner.startTask(
    'restore',
    `resume live restore to ${journal.newId}`,
    async ({ task, pool, onProgress, signal }) => {
      try {
        const r = await resumeLiveRestore({ ...from, pool: pool(), newId: journal.newId, stateDir: config.stateDir, log: task, onProgress, abort: signal });
        return { ok: true, result: { id: journal.guestId, version: journal.version, newId: journal.newId, config: r.configPath, running: r.running } };
      } finally {
        close();
      }
    },
    'serve',
  );
  log.info(`resuming the live restore of guest ${journal.guestId} version ${journal.version} to ${journal.newId} (from ${ref.name}): task ${taskId}`);
  return taskId;
}
