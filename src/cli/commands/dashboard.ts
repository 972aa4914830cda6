/** `coldvault dashboard [--url URL] [--token T] [--interval S]`: the terminal dashboard, a client of `coldvault serve`'s API. */
import { ColdvaultError } from '../../core/index.js';
import { str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';

export const dashboardOptions: OptionSpec = { url: { type: 'string' }, token: { type: 'string' }, interval: { type: 'string' } };
export const dashboardHelp = `coldvault dashboard [--url http://127.0.0.1:8080] [--token T] [--interval SECONDS]
  Terminal dashboard of a running 'coldvault serve' (token also from COLDVAULT_TOKEN); q quits, g switches the table between
  the rotation and the guests' backup state (a terminal of 38 lines or more shows both).`;

export async function dashboardCommand(ctx: CommandContext): Promise<number> {
  const url = str(ctx.args, 'url') ?? 'http://127.0.0.1:8080';
  if (!/^https?:\/\/[^/]/.test(url)) throw new ColdvaultError('USAGE', `coldvault dashboard: --url '${url}': expected http://HOST:PORT or https://...`);
  const intervalText = str(ctx.args, 'interval') ?? '1';
  const interval = Number(intervalText);
  if (!/^[0-9]*\.?[0-9]+$/.test(intervalText) || !(interval >= 0.1)) {
    throw new ColdvaultError('USAGE', `coldvault dashboard: --interval '${intervalText}': expected seconds >= 0.1`);
  }
  if (!process.stdout.isTTY || !process.stdin.isTTY) throw new ColdvaultError('USAGE', 'coldvault dashboard: needs a terminal (stdin and stdout)');
  const token = str(ctx.args, 'token') ?? process.env.COLDVAULT_TOKEN;
  const { runDashboard } = await import('../../dashboard/index.js'); // lazily: blessed loads only here
  return runDashboard({ url, token: token || undefined, interval });
}
