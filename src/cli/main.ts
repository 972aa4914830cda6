/**
 * cli: the `coldvault` command, the composition root: the only place where concrete parts (datastore,
 * catalog, worker pool, guests dir) are wired together. Exit codes: 0 ok, 1 failed, 2 bad usage.
 * Human output on stdout, vzdump-style log lines on stderr, `--json` for scripts.
 */
import { readFileSync } from 'node:fs';
import { describeError, isColdvaultError } from '../core/index.js';
import { parse, type OptionSpec } from './args.js';
import { CommandContext } from './context.js';

interface Command {
  options: OptionSpec;
  help: string;
  run: (ctx: CommandContext) => Promise<number>;
}

/**
 * Each command's module is loaded when it runs, not at start: `backup` does not load the other
 * commands, the server or the dashboard (start-up time is part of every backup's and restore's time).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  datastore: async () => {
    const m = await import('./commands/maintenance.js');
    return { options: m.datastoreOptions, help: m.datastoreHelp, run: m.datastoreCommand };
  },
  backup: async () => {
    const m = await import('./commands/backup.js');
    return { options: m.backupOptions, help: m.backupHelp, run: m.backupCommand };
  },
  list: async () => {
    const m = await import('./commands/list.js');
    return { options: m.listOptions, help: m.listHelp, run: m.listCommand };
  },
  restore: async () => {
    const m = await import('./commands/restore.js');
    return { options: m.restoreOptions, help: m.restoreHelp, run: m.restoreCommand };
  },
  export: async () => {
    const m = await import('./commands/export.js');
    return { options: m.exportOptions, help: m.exportHelp, run: m.exportCommand };
  },
  'boot-test': async () => {
    const m = await import('./commands/boot-test.js');
    return { options: m.bootTestOptions, help: m.bootTestHelp, run: m.bootTestCommand };
  },
  verify: async () => {
    const m = await import('./commands/verify.js');
    return { options: m.verifyOptions, help: m.verifyHelp, run: m.verifyCommand };
  },
  prune: async () => {
    const m = await import('./commands/maintenance.js');
    return { options: m.pruneOptions, help: m.pruneHelp, run: m.pruneCommand };
  },
  gc: async () => {
    const m = await import('./commands/maintenance.js');
    return { options: m.gcOptions, help: m.gcHelp, run: m.gcCommand };
  },
  catalog: async () => {
    const m = await import('./commands/maintenance.js');
    return { options: m.catalogOptions, help: m.catalogHelp, run: m.catalogCommand };
  },
  protect: async () => {
    const m = await import('./commands/maintenance.js');
    return { options: m.protectOptions, help: m.protectHelp, run: m.protectCommand };
  },
  benchmark: async () => {
    const m = await import('./commands/benchmark.js');
    return { options: m.benchmarkOptions, help: m.benchmarkHelp, run: m.benchmarkCommand };
  },
  job: async () => {
    const m = await import('./commands/job.js');
    return { options: m.jobOptions, help: m.jobHelp, run: m.jobCommand };
  },
  task: async () => {
    const m = await import('./commands/task.js');
    return { options: m.taskOptions, help: m.taskHelp, run: m.taskCommand };
  },
  serve: async () => {
    const m = await import('./commands/serve.js');
    return { options: m.serveOptions, help: m.serveHelp, run: m.serveCommand };
  },
  cert: async () => {
    const m = await import('./commands/cert.js');
    return { options: m.certOptions, help: m.certHelp, run: m.certCommand };
  },
  cluster: async () => {
    const m = await import('./commands/cluster.js');
    return { options: m.clusterOptions, help: m.clusterHelp, run: m.clusterCommand };
  },
  key: async () => {
    const m = await import('./commands/key.js');
    return { options: m.keyOptions, help: m.keyHelp, run: m.keyCommand };
  },
  token: async () => {
    const m = await import('./commands/token.js');
    return { options: m.tokenOptions, help: m.tokenHelp, run: m.tokenCommand };
  },
  sync: async () => {
    const m = await import('./commands/sync.js');
    return { options: m.syncOptions, help: m.syncHelp, run: m.syncCommand };
  },
  dashboard: async () => {
    const m = await import('./commands/dashboard.js');
    return { options: m.dashboardOptions, help: m.dashboardHelp, run: m.dashboardCommand };
  },
  devices: async () => {
    const m = await import('./commands/devices.js');
    return { options: m.devicesOptions, help: m.devicesHelp, run: m.devicesCommand };
  },
  snapshots: async () => {
    const m = await import('./commands/snapshots.js');
    return { options: m.snapshotsOptions, help: m.snapshotsHelp, run: m.snapshotsCommand };
  },
  doctor: async () => {
    const m = await import('./commands/doctor.js');
    return { options: m.doctorOptions, help: m.doctorHelp, run: m.doctorCommand };
  },
};

async function usage(): Promise<string> {
  const helps = await Promise.all(Object.values(COMMANDS).map(async (load) => (await load()).help));
  return `usage: coldvault <command> [options]   (--config FILE or COLDVAULT_CONFIG for defaults; coldvault --version)

${helps.join('\n\n')}
`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(await usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`coldvault ${packageVersion()} (node ${process.version})\n`);
    return 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`coldvault: unknown command '${name}'; commands: ${Object.keys(COMMANDS).join(', ')}\n`);
    return 2;
  }
  let ctx: CommandContext | undefined;
  try {
    const command = await load();
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
    if (!isColdvaultError(err)) process.stderr.write(`${err instanceof Error ? (err.stack ?? '') : ''}\n`);
    return isColdvaultError(err, 'USAGE') ? 2 : 1;
  } finally {
    await ctx?.close();
  }
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}
