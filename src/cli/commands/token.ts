/**
 * `coldvault token create <name> [--role ROLE] [--store STORE] [--expires DAYS]`, `token list [--json]`,
 * `token rm <name>`: API tokens for scripts, the dashboard and (role backup) other nodes. Only root
 * (who can read the state database) manages them: the CLI is admin.
 */
import { resolve } from 'node:path';
import { ColdvaultError } from '../../core/index.js';
import type { TokenInfo } from '../../server/index.js';
import { intOption, str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';
import { s3StoreUrlsOf } from '../s3-config.js';

export const tokenOptions: OptionSpec = { expires: { type: 'string' }, role: { type: 'string' }, store: { type: 'string' } };
export const tokenHelp = `coldvault token create <name> [--role admin|operator|audit|backup] [--store STORE] [--expires DAYS]
                                        makes an API token and prints it (only this once)
coldvault token list [--json]           every token with its role (and store), expiry and last use
coldvault token rm <name>
  Tokens authenticate scripts and the dashboard against 'coldvault serve': Authorization: Bearer <token>.
  Roles (default operator): admin: everything; operator: read, run jobs, verify, restore to new ids,
  edit jobs but not their scripts, hook or device, no force, no prune; audit: read only;
  backup: only the versions of one datastore, given with --store (a configured datastore, folder or S3).`;

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
      const { token, info } = store.create(needName(), {
        role: str(ctx.args, 'role'),
        store: datastoreName(ctx, str(ctx.args, 'store')),
        expiresDays: intOption(ctx.args, 'expires', 1),
      });
      if (ctx.json) ctx.printJson({ ...info, token });
      else ctx.print(`${token}\n(token '${info.name}', ${scopeOf(info)}${info.expires ? `, expires ${info.expires}` : ''}: shown only now; store it safely)`);
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

/** --store: a configured datastore's name, its folder or an S3 datastore's `s3://BUCKET/PREFIX/` (-> its name). */
function datastoreName(ctx: CommandContext, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const { datastores, s3Datastores } = ctx.config;
  if (Object.hasOwn(datastores, value) || Object.hasOwn(s3Datastores, value)) return value;
  const byAddress = Object.entries(s3StoreUrlsOf(ctx.config)).find(([, url]) => url === value || url === `${value}/`);
  if (byAddress) return byAddress[0];
  const byFolder = value.startsWith('s3://') ? undefined : Object.entries(datastores).find(([, dir]) => resolve(dir) === resolve(value));
  if (byFolder) return byFolder[0];
  const configured = [...Object.keys(datastores), ...Object.keys(s3Datastores)].join(', ') || 'none';
  throw new ColdvaultError('USAGE', `--store '${value}' is not a configured datastore (configured: ${configured}; config key datastores)`);
}

const scopeOf = (t: TokenInfo): string => (t.store === null ? `role ${t.role}` : `role ${t.role} of store ${t.store}`);

function listTokens(ctx: CommandContext, tokens: TokenInfo[]): number {
  if (ctx.json) ctx.printJson(tokens);
  else if (tokens.length === 0) ctx.print('no tokens');
  else
    ctx.print(
      tokens
        .map(
          (t) =>
            `${t.name.padEnd(20)} ${scopeOf(t).padEnd(24)} created ${t.created.slice(0, 19)}  ${t.expires ? `${t.expired ? 'EXPIRED' : 'expires'} ${t.expires.slice(0, 19)}` : 'no expiry'}  last used ${t.lastUsed?.slice(0, 19) ?? 'never'}`,
        )
        .join('\n'),
    );
  return 0;
}
