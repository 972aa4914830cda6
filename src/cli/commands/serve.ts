/**
 * `coldvault serve`: the service. At start it brings back guests that an interrupted run left stopped
 * (stop journal), removes the cold snapshots such runs left (jobs/snapshot-leftovers.ts), sets the admin password on first start (COLDVAULT_ADMIN_PASSWORD, else generated
 * and printed once), then serves the API and web UI (src/server) on `--listen` / config `listen`
 * (default 127.0.0.1:8080; HTTPS beyond loopback or with `tls`: the configured certificate, else the
 * self-signed one it makes at first use, server/tls; plain HTTP there only with allowInsecureListen) and runs the
 * scheduler; both start jobs through one TaskRunner. On SIGTERM / SIGINT it schedules nothing new and
 * aborts running tasks, which start the guests they stopped and end; a second signal exits at once
 * (the journal restarts those guests at the next start). At start it also checks, in the background,
 * that the state dir, the config file, the TLS key and the datastores are private to their owner
 * (datastore/privacy.ts) and warns with the fix when others may read them. Once it listens, it
 * finishes the live restores (`restore --live`, the API's `live: true`) whose process died, each as
 * a task, or WARNs with the command that does (server/live-resume.ts).
 */
import { resolve } from 'node:path';
import { createTaskLog, describeError, logAt, type LogLine, type TaskLog } from '../../core/index.js';
import { checkPrivate, privacyWarnings } from '../../datastore/index.js';
import { removeLeftoverSnapshots, Scheduler } from '../../jobs/index.js';
import { str, type OptionSpec } from '../args.js';
import { s3StoresOf, s3StoreUrlsOf } from '../s3-config.js';
import type { CommandContext } from '../context.js';

export const serveOptions: OptionSpec = { 'guests-dir': { type: 'string' }, storage: { type: 'string', multiple: true }, listen: { type: 'string' } };
export const serveHelp = `coldvault serve [--config FILE] [--state-dir DIR] [--listen HOST:PORT]
  Serves the API and web UI (default 127.0.0.1:8080) and runs the scheduler (and brings back guests
  left stopped by an interrupted run, and finishes live restores whose process died). The admin password is COLDVAULT_ADMIN_PASSWORD at the first
  start, else generated and printed once.`;

export async function serveCommand(ctx: CommandContext): Promise<number> {
  // loaded here, not at the top: the other commands start without Fastify and TypeBox (start-up time)
  const { createServer, DEFAULT_LISTEN, ensureAdminPassword, parseListen, resumeLiveRestores, serverTls, startServer, TaskRunner, tuneHeapForServing } =
    await import('../../server/index.js');
  tuneHeapForServing();
  const { host, port } = parseListen(str(ctx.args, 'listen') ?? ctx.config.listen ?? DEFAULT_LISTEN);
  const tls = await serverTls(host, ctx.config); // may make serve's own certificate (state dir)
  const config = { ...ctx.config, tls, s3Stores: s3StoresOf(ctx.config), s3StoreUrls: s3StoreUrlsOf(ctx.config) };
  const log = createTaskLog((line) => process.stderr.write(`${line.level}: ${line.message}\n`));
  const signalled = untilSignal(log); // from the start: a SIGTERM during start-up stops cleanly too, never the default kill
  const state = ctx.state();
  const driver = ctx.driver();
  await recoverGuests(ctx);
  await recoverSnapshots(ctx);
  const privacy = warnAboutModes(ctx, log);
  const { generated } = await ensureAdminPassword(state.db, process.env.COLDVAULT_ADMIN_PASSWORD);
  if (generated) ctx.print(`admin password (shown only now; stored hashed): ${generated}`);
  const runner = new TaskRunner({ config, state, driver });
  const app = await createServer({ config, state, driver, runner });
  const scheduler = new Scheduler({
    db: state.db,
    jobs: state.jobs,
    log,
    graceMinutes: ctx.config.scheduler?.graceMinutes,
    tickMs: (ctx.config.scheduler?.tickSeconds ?? 15) * 1000,
    run: async (job) => {
      const { taskId, done } = await runner.startJob(job, 'scheduler');
      log.info(`job ${job.id}: task ${taskId}`);
      return done;
    },
  });
  const url = await startServer(app, host, port, config);
  ctx.print(`coldvault serve: web UI and API on ${url} (node ${ctx.config.node})`);
  if (tls) ctx.print(`TLS certificate ${tls.cert} (${tls.created ? 'made now' : tls.source}), SHA-256 fingerprint ${tls.info.fingerprint}`);
  log.info(
    `coldvault serve on node ${ctx.config.node}: ${state.jobs.list().filter((j) => j.enabled).length} enabled job(s), state in ${ctx.config.stateDir}, listening on ${url}`,
  );
  scheduler.start();
  await resumeLiveRestores({ config, state, runner, log }).catch((err: unknown) => log.warn(`resuming pending live restores: ${describeError(err)}`));
  await signalled;
  await Promise.all([scheduler.stop(), runner.close()]);
  await app.close();
  await privacy;
  return 0;
}

/** WARNs (with the fix) about state, config, TLS key and datastores that other local users may read. */
async function warnAboutModes(ctx: CommandContext, log: TaskLog): Promise<void> {
  const { config } = ctx;
  const configFile = str(ctx.args, 'config') ?? process.env.COLDVAULT_CONFIG;
  const stores = [
    ...Object.values(config.datastores),
    ...ctx
      .state()
      .jobs.list()
      .map((j) => j.store),
  ].map((d) => resolve(d));
  const roots = [config.stateDir, configFile, typeof config.tls === 'object' ? config.tls.key : undefined, ...new Set(stores)].filter((r): r is string =>
    Boolean(r),
  );
  try {
    for (const line of privacyWarnings(await checkPrivate(roots))) logAt(log, line.level, line.message);
  } catch (err) {
    log.warn(`checking the file modes of the state dir and the datastores failed: ${describeError(err)}`);
  }
}

function untilSignal(log: TaskLog): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      log.info('stopping: no new runs; running jobs start their guests again and end (signal again to exit now)');
      process.once('SIGTERM', () => process.exit(1));
      process.once('SIGINT', () => process.exit(1));
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

/** Starts guests left stopped by runs that died; logs it in a `recovery` task when there are any. */
export async function recoverGuests(ctx: CommandContext): Promise<void> {
  const { tasks, journal } = ctx.state();
  if (journal.orphans().length === 0) return;
  const task = tasks.create('recovery', { node: ctx.config.node, summary: 'start guests left stopped by an interrupted run' });
  task.onLine((line) => process.stderr.write(`${line.level}: ${line.message}\n`));
  await journal.recover(ctx.driver(), task);
  task.finish(journal.orphans().length === 0);
}

/** Removes cold snapshots left by runs that died; logs it in a `recovery` task when there are any. */
export async function recoverSnapshots(ctx: CommandContext): Promise<void> {
  const lines: LogLine[] = [];
  const { guestsDir, storages, allowDiskPaths } = ctx.config;
  await removeLeftoverSnapshots(
    { guestsDir, storages, allowDiskPaths },
    createTaskLog((line) => lines.push(line)),
  );
  if (lines.length === 0) return;
  const task = ctx.state().tasks.create('recovery', { node: ctx.config.node, summary: 'remove cold snapshots left by an interrupted run' });
  task.onLine((line) => process.stderr.write(`${line.level}: ${line.message}\n`));
  for (const line of lines) logAt(task, line.level, line.message);
  task.finish(lines.every((l) => l.level !== 'ERROR'));
}
