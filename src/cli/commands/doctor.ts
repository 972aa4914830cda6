/**
 * `coldvault doctor [--json]`: checks this node's setup (jobs/doctor) and says what to fix. The config
 * is a finding of its own: one that does not load is reported (with the loader's message) and
 * nothing else is checked. Exit 0 when no finding failed (warnings included), 1 otherwise.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describeError } from '../../core/index.js';
import { type DoctorSetup, type Finding, failFinding, okFinding, runDoctor, warnFinding } from '../../jobs/index.js';
import { str, type OptionSpec } from '../args.js';
import type { CliConfig } from '../config.js';
import type { CommandContext } from '../context.js';
import { configuredS3Settings } from '../s3-config.js';

export const doctorOptions: OptionSpec = { 'guests-dir': { type: 'string' }, storage: { type: 'string', multiple: true } };
export const doctorHelp = `coldvault doctor [--json] [--config FILE] [--state-dir DIR]
  Checks this node's setup and says what to fix: the config, the state dir, the guests dir and
  storages, every datastore (there, writable; S3: readable with its credentials), free space, the
  hypervisor driver (QMP sockets, qm, virsh), the mail server (EHLO; nothing is sent), the cluster
  ring and the clock. Exit 1 when something needs fixing.`;

/** Where the service unit (packaging/coldvault.service) reads its config. */
const SERVICE_CONFIG = '/etc/coldvault/config.json';

export async function doctorCommand(ctx: CommandContext): Promise<number> {
  const file = str(ctx.args, 'config') ?? process.env.COLDVAULT_CONFIG;
  let config: CliConfig;
  try {
    config = ctx.config;
  } catch (err) {
    return report(ctx, undefined, [
      failFinding('config', describeError(err), 'correct the config file (README: Config file); coldvault serve does not start with it'),
    ]);
  }
  const state = stateOf(ctx, config);
  const { findings } = await runDoctor(setupOf(config, state.jobs, state.tasks));
  const code = report(ctx, config.node, [configFinding(file), ...state.findings, ...findings]);
  // a check cut off by its time limit may leave its look running (a hung mount's statfs, a socket that
  // never answers): it does not hold the exit once the report is out
  setTimeout(() => process.exit(), 2_000).unref();
  return code;
}

function configFinding(file: string | undefined): Finding {
  if (!file) {
    return warnFinding(
      'config',
      'no config file given (--config or COLDVAULT_CONFIG): the defaults were checked',
      `give the file the service uses: coldvault doctor --config ${SERVICE_CONFIG}`,
    );
  }
  const mode = statSync(file).mode;
  if ((mode & 0o077) !== 0) {
    return warnFinding(
      'config',
      `'${file}' is valid, but other local users may read it (mode ${(mode & 0o777).toString(8)}): it may hold passwords and tokens`,
      `chmod 600 '${file}'`,
    );
  }
  return okFinding('config', `'${file}' is valid`);
}

/** The jobs and recent tasks of the state database, when there is one (doctor does not create it). */
function stateOf(ctx: CommandContext, config: CliConfig): Pick<DoctorSetup, 'jobs' | 'tasks'> & { findings: Finding[] } {
  if (!existsSync(join(config.stateDir, 'coldvault.sqlite'))) return { jobs: [], tasks: [], findings: [] };
  try {
    const { jobs, tasks } = ctx.state();
    return { jobs: jobs.list(), tasks: tasks.list(200), findings: [] };
  } catch (err) {
    const found = `the state database in '${config.stateDir}' cannot be read: ${describeError(err)}`;
    return { jobs: [], tasks: [], findings: [failFinding('state database', found, 'see the error; a database of a newer coldvault needs that version')] };
  }
}

function setupOf(config: CliConfig, jobs: DoctorSetup['jobs'], tasks: DoctorSetup['tasks']): DoctorSetup {
  const s3Datastores = Object.fromEntries(Object.entries(config.s3Datastores).map(([name, c]) => [name, () => configuredS3Settings(name, c, process.env)]));
  return {
    node: config.node,
    stateDir: config.stateDir,
    guestsDir: config.guestsDir,
    storages: config.storages,
    datastores: config.datastores,
    diskStores: config.storeDevices ?? {},
    s3Datastores,
    hypervisor: config.hypervisor,
    mail: config.mail,
    cluster: config.cluster,
    jobs,
    tasks,
  };
}

function report(ctx: CommandContext, node: string | undefined, findings: Finding[]): number {
  const ok = findings.every((f) => f.status !== 'fail');
  if (ctx.json) ctx.printJson({ node: node ?? null, ok, findings });
  else ctx.print(render(node, findings));
  return ok ? 0 : 1;
}

const LABEL = { ok: 'ok', warn: 'WARN', fail: 'FAIL' } as const;

function render(node: string | undefined, findings: Finding[]): string {
  const width = Math.min(18, Math.max(...findings.map((f) => f.check.length)));
  const lines = findings.flatMap((f) => [
    `${LABEL[f.status].padEnd(4)}  ${f.check.padEnd(width)}  ${f.found}`,
    ...(f.fix ? [`${''.padEnd(4 + 2 + width)}  fix: ${f.fix}`] : []),
  ]);
  const count = (s: Finding['status']): number => findings.filter((f) => f.status === s).length;
  const verdict =
    count('fail') > 0 ? `${count('fail')} to fix, ${count('warn')} warning(s)` : count('warn') > 0 ? `nothing to fix, ${count('warn')} warning(s)` : 'all fine';
  return [`coldvault doctor${node ? ` on node ${node}` : ''}:`, ...lines, `${verdict} (${count('ok')} ok)`].join('\n');
}
