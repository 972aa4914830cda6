/** `coldvault task list [--json]`, `coldvault task log <task-id> [-f]` */
import { ColdvaultError, formatBytes, formatLogLine } from '../../core/index.js';
import { flag, intOption, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';

export const taskOptions: OptionSpec = { follow: { type: 'boolean', short: 'f' }, limit: { type: 'string' } };
export const taskHelp = `coldvault task list [--limit N] [--json]  newest first: id, status, start, who started it, type, job
coldvault task log <task-id> [-f]      prints a task's log; -f follows it until the task ends`;

export async function taskCommand(ctx: CommandContext): Promise<number> {
  const [sub, id] = ctx.args.positionals;
  const { tasks } = ctx.state();
  if (sub === 'list') {
    const list = tasks.list(intOption(ctx.args, 'limit', 1) ?? 50);
    if (ctx.json) ctx.printJson(list);
    else
      ctx.print(
        list.length === 0
          ? 'no tasks'
          : list
              .map(
                (t) =>
                  `${t.id}  ${t.status.padEnd(7)} ${t.start.slice(0, 19)}  by ${(t.startedBy ?? '-').padEnd(16)} ${t.type}${t.jobId ? ` job ${t.jobId}` : ''}${wireOf(t.result)}`,
              )
              .join('\n'),
      );
    return 0;
  }
  if (sub === 'log') {
    if (!id) throw new ColdvaultError('USAGE', 'coldvault task log: name the task');
    return printLog(ctx, id, flag(ctx.args, 'follow'));
  }
  throw new ColdvaultError('USAGE', `coldvault task: unknown subcommand '${sub ?? ''}' (list, log)`);
}

/** `, 1.20 MiB on the wire for 32.00 GiB` for a cluster-mode push; nothing otherwise. */
function wireOf(result: unknown): string {
  const guests = (result as { guests?: Array<{ wireBytes?: number; logicalBytes?: number }> } | null)?.guests ?? [];
  const pushed = guests.filter((g) => g.wireBytes !== undefined);
  if (pushed.length === 0) return '';
  const sum = (key: 'wireBytes' | 'logicalBytes'): number => pushed.reduce((a, g) => a + (g[key] ?? 0), 0);
  return `, ${formatBytes(sum('wireBytes'))} on the wire for ${formatBytes(sum('logicalBytes'))}`;
}

async function printLog(ctx: CommandContext, id: string, follow: boolean): Promise<number> {
  const { tasks } = ctx.state();
  let next = 0;
  for (;;) {
    const info = tasks.get(id);
    for (const line of tasks.lines(id, next)) {
      ctx.print(formatLogLine(line));
      next = line.n + 1;
    }
    if (!follow || info.status !== 'running') return info.status === 'failed' ? 1 : 0;
    await new Promise((r) => setTimeout(r, 300));
  }
}
