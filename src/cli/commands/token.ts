/** `coldvault token create <name> [--expires DAYS]`, `token list [--json]`, `token rm <name>`: API tokens for scripts and the dashboard. */
import { ColdvaultError } from '../../core/errors.js';
import type { TokenInfo } from '../../server/index.js';
import { intOption, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';

export const tokenOptions: OptionSpec = { expires: { type: 'string' } };
export const tokenHelp = `coldvault token create <name> [--expires DAYS]   makes an API token and prints it (only this once)
coldvault token list [--json]
coldvault token rm <name>
  Tokens authenticate scripts and the dashboard against 'coldvault serve': Authorization: Bearer <token>.`;

export async function tokenCommand(ctx: CommandContext): Promise<number> {
  const [sub, name, ...rest] = ctx.args.positionals;
  const { TokenStore } = await import('../../server/index.js'); // lazily: the other commands start without Fastify
  const store = new TokenStore(ctx.state().db);
  const needName = (): string => {
    if (!name || rest.length > 0) throw new ColdvaultError('USAGE', `coldvault token ${sub}: name exactly one token`);
    return name;
  };
  switch (sub) {
    case 'create': {
      const { token, info } = store.create(needName(), intOption(ctx.args, 'expires', 1));
      if (ctx.json) ctx.printJson({ ...info, token });
      else ctx.print(`${token}\n(token '${info.name}'${info.expires ? `, expires ${info.expires}` : ''}: shown only now; store it safely)`);
      return 0;
    }
    case 'list':
      return listTokens(ctx, store.list());
    case 'rm':
      store.remove(needName());
      ctx.print(`token ${name} removed`);
      return 0;
    default:
      throw new ColdvaultError('USAGE', `coldvault token: unknown subcommand '${sub ?? ''}' (create, list, rm)`);
  }
}

function listTokens(ctx: CommandContext, tokens: TokenInfo[]): number {
  if (ctx.json) ctx.printJson(tokens);
  else if (tokens.length === 0) ctx.print('no tokens');
  else ctx.print(tokens.map((t) => `${t.name.padEnd(20)} created ${t.created.slice(0, 19)}  ${t.expires ? `${t.expired ? 'EXPIRED' : 'expires'} ${t.expires.slice(0, 19)}` : 'no expiry'}  last used ${t.lastUsed?.slice(0, 19) ?? 'never'}`).join('\n'));
  return 0;
}
