/**
 * cli: the `coldvault` command, the composition root: the only place where concrete parts (datastore,
 * catalog, worker pool, guests dir) are wired together. Exit codes: 0 ok, 1 failed, 2 bad usage.
 * Human output on stdout, vzdump-style log lines on stderr, `--json` for scripts.
 */
import { readFileSync } from 'node:fs';
import { describeError, isColdvaultError } from '../core/errors.js';
import { parse, type OptionSpec } from './args.js';
import { CommandContext } from './context.js';
import { backupCommand, backupHelp, backupOptions } from './commands/backup.js';
import { listCommand, listHelp, listOptions } from './commands/list.js';
import { restoreCommand, restoreHelp, restoreOptions } from './commands/restore.js';
import { verifyCommand, verifyHelp, verifyOptions } from './commands/verify.js';
import { benchmarkCommand, benchmarkHelp, benchmarkOptions } from './commands/benchmark.js';
import { jobCommand, jobHelp, jobOptions } from './commands/job.js';
import { taskCommand, taskHelp, taskOptions } from './commands/task.js';
import { serveCommand, serveHelp, serveOptions } from './commands/serve.js';
import { tokenCommand, tokenHelp, tokenOptions } from './commands/token.js';
import { dashboardCommand, dashboardHelp, dashboardOptions } from './commands/dashboard.js';
import { devicesCommand, devicesHelp, devicesOptions } from './commands/devices.js';
import {
  catalogCommand, catalogHelp, catalogOptions, datastoreCommand, datastoreHelp, datastoreOptions, gcCommand, gcHelp, gcOptions,
  protectCommand, protectHelp, protectOptions, pruneCommand, pruneHelp, pruneOptions,
} from './commands/maintenance.js';

interface Command {
  options: OptionSpec;
  help: string;
  run: (ctx: CommandContext) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  datastore: { options: datastoreOptions, help: datastoreHelp, run: datastoreCommand },
  backup: { options: backupOptions, help: backupHelp, run: backupCommand },
  list: { options: listOptions, help: listHelp, run: listCommand },
  restore: { options: restoreOptions, help: restoreHelp, run: restoreCommand },
  verify: { options: verifyOptions, help: verifyHelp, run: verifyCommand },
  prune: { options: pruneOptions, help: pruneHelp, run: pruneCommand },
  gc: { options: gcOptions, help: gcHelp, run: gcCommand },
  catalog: { options: catalogOptions, help: catalogHelp, run: catalogCommand },
  protect: { options: protectOptions, help: protectHelp, run: protectCommand },
  benchmark: { options: benchmarkOptions, help: benchmarkHelp, run: benchmarkCommand },
  job: { options: jobOptions, help: jobHelp, run: jobCommand },
  task: { options: taskOptions, help: taskHelp, run: taskCommand },
  serve: { options: serveOptions, help: serveHelp, run: serveCommand },
  token: { options: tokenOptions, help: tokenHelp, run: tokenCommand },
  dashboard: { options: dashboardOptions, help: dashboardHelp, run: dashboardCommand },
  devices: { options: devicesOptions, help: devicesHelp, run: devicesCommand },
};

const USAGE = `usage: coldvault <command> [options]   (--config FILE or COLDVAULT_CONFIG for defaults; coldvault --version)

${Object.values(COMMANDS).map((c) => c.help).join('\n\n')}
`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`coldvault ${packageVersion()} (node ${process.version})\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`coldvault: unknown command '${name}'; commands: ${Object.keys(COMMANDS).join(', ')}\n`);
    return 2;
  }
  let ctx: CommandContext | undefined;
  try {
    const args = parse(rest, command.options, name);
    if (args.values.help) {
      process.stdout.write(`${command.help}\n`);
      return 0;
    }
    ctx = new CommandContext(args, name);
    return await command.run(ctx);
  } catch (err) {
    ctx?.bar.clear();
    const message = describeError(err);
    process.stderr.write(`${message.startsWith('coldvault ') ? message : `coldvault ${name}: ${message}`}\n`);
    if (!isColdvaultError(err)) process.stderr.write(`${err instanceof Error ? err.stack ?? '' : ''}\n`);
    return isColdvaultError(err, 'USAGE') ? 2 : 1;
  } finally {
    await ctx?.close();
  }
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}
