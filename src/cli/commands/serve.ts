/**
 * `coldvault serve`: the service. At start it brings back guests that an interrupted run left stopped
 * (stop journal), then runs the scheduler until SIGTERM / SIGINT. Then it schedules nothing new and
 * aborts running jobs, which start the guests they stopped and end; a second signal exits at once
 * (the journal restarts those guests at the next start).
 */
import { createTaskLog } from '../../core/log.js';
import { runJob, Scheduler } from '../../jobs/index.js';
import type { OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';

export const serveOptions: OptionSpec = { 'guests-dir': { type: 'string' }, storage: { type: 'string', multiple: true } };
export const serveHelp = `coldvault serve [--config FILE] [--state-dir DIR]
  Runs the scheduler (and brings back guests left stopped by an interrupted run).`;

export async function serveCommand(ctx: CommandContext): Promise<number> {
  const { db, jobs, tasks, journal } = ctx.state();
  const driver = ctx.driver();
  await recoverGuests(ctx);
  const log = createTaskLog((line) => process.stderr.write(`${line.level}: ${line.message}\n`));
  const abort = new AbortController();
  const scheduler = new Scheduler({
    db, jobs, log, graceMinutes: ctx.config.scheduler?.graceMinutes, tickMs: (ctx.config.scheduler?.tickSeconds ?? 15) * 1000,
    run: (job) => runJob(job, {
      node: job.node ?? ctx.config.node, stateDir: ctx.config.stateDir, guestsDir: ctx.config.guestsDir, storages: ctx.config.storages,
      zstdLevel: ctx.config.zstdLevel, tasks, journal, driver, mail: ctx.config.mail, signal: abort.signal,
    }, (task) => log.info(`job ${job.id}: task ${task.id}`)),
  });
  log.info(`coldvault serve on node ${ctx.config.node}: ${jobs.list().filter((j) => j.enabled).length} enabled job(s), state in ${ctx.config.stateDir}`);
  scheduler.start();
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      log.info('stopping: no new runs; running jobs start their guests again and end (signal again to exit now)');
      abort.abort();
      process.once('SIGTERM', () => process.exit(1));
      process.once('SIGINT', () => process.exit(1));
      void scheduler.stop().then(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
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
