/** `coldvault restore <vmid> --version N --new-id M --store <dir> [--target-storage <id>] [--unique] [--force]` */
import { ColdvaultError } from '../../core/errors.js';
import { parseGuestId, parsePositiveInt } from '../../core/ids.js';
import { restoreGuest } from '../../pipeline/index.js';
import { flag, required, str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';

export const restoreOptions: OptionSpec = {
  store: { type: 'string' }, version: { type: 'string' }, 'new-id': { type: 'string' }, 'guests-dir': { type: 'string' },
  storage: { type: 'string', multiple: true }, 'target-storage': { type: 'string' }, unique: { type: 'boolean' }, force: { type: 'boolean' },
};
export const restoreHelp = `coldvault restore <vmid> --version N --new-id M --store <dir> [--guests-dir <dir>] [--storage <id>=<dir>]... [--target-storage <id>] [--unique] [--force]
  Restores a version of a guest under a new ID: disks as vm-M-disk-K, config as M.conf.`;

export async function restoreCommand(ctx: CommandContext): Promise<number> {
  const [first, ...rest] = ctx.args.positionals;
  if (!first || rest.length > 0) throw new ColdvaultError('USAGE', 'coldvault restore: name exactly one vmid');
  const guestId = parseGuestId(first, 'vmid');
  const version = parsePositiveInt(required(ctx.args, 'version', 'restore'), '--version');
  const newId = parseGuestId(required(ctx.args, 'new-id', 'restore'), '--new-id');
  const { store } = await ctx.openStore();
  const result = await restoreGuest({
    store, pool: ctx.pool(), guestId, version, newId, guestsDir: ctx.config.guestsDir, storages: ctx.config.storages,
    targetStorage: str(ctx.args, 'target-storage'), unique: flag(ctx.args, 'unique'), force: flag(ctx.args, 'force'),
    log: ctx.log, onProgress: (p) => ctx.bar.update(p),
  });
  if (ctx.json) ctx.printJson({ id: guestId, version, newId, config: result.configPath, volumes: Object.fromEntries(result.volumes) });
  return 0;
}
