/** `coldvault datastore init|info|undelete`, `prune`, `gc`, `catalog rebuild`, `protect`. */
import { resolve } from 'node:path';
import { ColdvaultError, formatBytes, parseGuestId, parsePositiveInt } from '../../core/index.js';
import { collectGarbage, collectS3Garbage, Datastore, hasRetention, isS3Url, S3Datastore, undeleteRetained, type PruneOptions } from '../../datastore/index.js';
import { protectS3Version, protectVersion, pruneGuest, pruneS3Guest } from '../../pipeline/index.js';
import { flag, intOption, required, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';
import { S3_HELP, s3Options, s3StoreSettings } from '../s3-option.js';

export const datastoreOptions: OptionSpec = { store: { type: 'string' }, ...s3Options, 'object-lock-days': { type: 'string' }, 'dry-run': { type: 'boolean' } };
export const datastoreHelp = `coldvault datastore init <dir>     creates a datastore in an empty (or new) folder
coldvault datastore init s3://BUCKET/PREFIX --endpoint URL [--region R] [--object-lock-days N]
coldvault datastore init NAME [--object-lock-days N]   (an S3 datastore of the config file's datastores)
                                   creates a datastore in a bucket (the bucket too, when it does not exist);
                                   with --object-lock-days every version is immutable for N days (S3 Object
                                   Lock, COMPLIANCE): the bucket must be new, or made with Object Lock
coldvault datastore info --store <dir> [--json]
coldvault datastore undelete --store s3://BUCKET/PREFIX|NAME [--dry-run] [--json]
                                   an Object Lock datastore: removes the delete markers that a DELETE without
                                   a version id (any S3 tool) put on objects still under retention, so the
                                   versions they hid are listed and restorable again
${S3_HELP}`;

export async function datastoreCommand(ctx: CommandContext): Promise<number> {
  const [sub, dir] = ctx.args.positionals;
  if (sub === 'init') {
    if (!dir) throw new ColdvaultError('USAGE', 'coldvault datastore init: name the folder');
    if (isS3Url(dir) || Object.hasOwn(ctx.config.s3Datastores, dir)) return initS3(ctx, dir);
    if (ctx.args.values['object-lock-days'] !== undefined)
      throw new ColdvaultError('USAGE', '--object-lock-days goes with an s3:// datastore (S3 Object Lock)');
    const store = await Datastore.init(resolve(dir));
    if (ctx.json) ctx.printJson(store.identity);
    else ctx.print(`created datastore ${store.identity.id} in '${store.dir}' (format ${store.identity.format})`);
    return 0;
  }
  if (sub === 'info') {
    const s3 = ctx.s3Settings();
    if (s3) {
      const { store, catalog } = await ctx.openS3Store(s3);
      const info = { dir: store.dir, endpoint: s3.endpoint, ...store.identity, ...catalog.storeTotals() };
      if (ctx.json) ctx.printJson(info);
      else
        ctx.print(
          `datastore ${info.id} in '${info.dir}' at ${info.endpoint}: format ${info.format}, ${info.versions} versions, ${formatBytes(info.logicalBytes)} backed up`,
        );
      return 0;
    }
    const { store, catalog } = await ctx.openStore();
    const info = { dir: store.dir, ...store.identity, ...(await store.space()), ...catalog.storeTotals() };
    if (ctx.json) ctx.printJson(info);
    else
      ctx.print(
        `datastore ${info.id} in '${info.dir}': format ${info.format}, ${info.versions} versions, ${formatBytes(info.logicalBytes)} backed up, ${formatBytes(info.free)} free of ${formatBytes(info.total)}`,
      );
    return 0;
  }
  if (sub === 'undelete') return undelete(ctx);
  throw new ColdvaultError('USAGE', `coldvault datastore: unknown subcommand '${sub ?? ''}' (init, info, undelete)`);
}

async function undelete(ctx: CommandContext): Promise<number> {
  const s3 = ctx.s3Settings();
  if (!s3) throw new ColdvaultError('USAGE', 'coldvault datastore undelete: --store must be an S3 datastore (s3://BUCKET/PREFIX or a configured name)');
  const { store, catalog } = await ctx.openS3Store(s3);
  const dryRun = flag(ctx.args, 'dry-run');
  const r = await undeleteRetained(store.client, store.keys, { dryRun, healing: await store.chunks.listToHeal() });
  if (!dryRun && r.keys.length > 0) await catalog.reconcile();
  if (ctx.json) ctx.printJson({ ...r, dryRun });
  else {
    for (const key of r.keys) ctx.print(`${dryRun ? 'would bring back' : 'brought back'} ${key}`);
    for (const key of r.leftHidden) ctx.print(`left hidden ${key}: its retention is over`);
    ctx.print(`${r.keys.length} object(s) ${dryRun ? 'would be' : 'were'} made visible again`);
  }
  return 0;
}

async function initS3(ctx: CommandContext, url: string): Promise<number> {
  const settings = s3StoreSettings({ ...ctx.args, values: { ...ctx.args.values, store: url } }, ctx.config.s3Datastores);
  if (!settings) throw new ColdvaultError('USAGE', `'${url}' is not an s3:// address`);
  const store = await S3Datastore.init(settings, { objectLockDays: intOption(ctx.args, 'object-lock-days', 1) });
  store.close();
  const locked = store.lockDays === undefined ? '' : `; every version immutable for ${store.lockDays} day(s) (Object Lock)`;
  if (ctx.json) ctx.printJson({ ...store.identity, dir: store.dir, endpoint: settings.endpoint, objectLockDays: store.lockDays ?? null });
  else ctx.print(`created datastore ${store.identity.id} in '${store.dir}' at ${settings.endpoint} (format ${store.identity.format})${locked}`);
  return 0;
}

export const pruneOptions: OptionSpec = {
  store: { type: 'string' },
  'keep-last': { type: 'string' },
  'keep-hourly': { type: 'string' },
  'keep-daily': { type: 'string' },
  'keep-weekly': { type: 'string' },
  'keep-monthly': { type: 'string' },
  'keep-yearly': { type: 'string' },
  'dry-run': { type: 'boolean' },
  ...s3Options,
};
export const pruneHelp = `coldvault prune <vmid> --keep-last N [--keep-hourly N] [--keep-daily N] [--keep-weekly N] [--keep-monthly N] [--keep-yearly N] [--dry-run] --store <dir>
  Removes the versions no keep rule covers (protected versions are always kept). Run 'coldvault gc' to free their chunks.`;

export async function pruneCommand(ctx: CommandContext): Promise<number> {
  const guestId = parseGuestId(ctx.args.positionals[0] ?? '', 'vmid');
  const options: PruneOptions = {
    keepLast: intOption(ctx.args, 'keep-last'),
    keepHourly: intOption(ctx.args, 'keep-hourly'),
    keepDaily: intOption(ctx.args, 'keep-daily'),
    keepWeekly: intOption(ctx.args, 'keep-weekly'),
    keepMonthly: intOption(ctx.args, 'keep-monthly'),
    keepYearly: intOption(ctx.args, 'keep-yearly'),
  };
  if (!hasRetention(options)) throw new ColdvaultError('USAGE', 'coldvault prune: give at least one --keep-* option above 0 (prune never removes everything)');
  const s3 = ctx.s3Settings();
  const request = { guestId, options, log: ctx.log, dryRun: flag(ctx.args, 'dry-run') };
  const removed = s3 ? await pruneS3Guest({ ...request, ...(await ctx.openS3Store(s3)) }) : await pruneGuest({ ...request, ...(await ctx.openStore()) });
  if (ctx.json) ctx.printJson({ id: guestId, removed, dryRun: flag(ctx.args, 'dry-run') });
  return 0;
}

export const gcOptions: OptionSpec = { store: { type: 'string' }, ...s3Options };
export const gcHelp = `coldvault gc --store <dir> [--json]
  Removes chunks that no version references; safe while backups run. On an s3:// store it runs when no
  backup is running there (and backups wait for it): see the README's gc argument for object storage.`;

export async function gcCommand(ctx: CommandContext): Promise<number> {
  const s3 = ctx.s3Settings();
  if (s3) {
    const { store } = await ctx.openS3Store(s3);
    const r = await collectS3Garbage(store, ctx.log);
    if (ctx.json) ctx.printJson(r);
    else ctx.print(`removed ${r.removedChunks} unused chunks (${formatBytes(r.removedBytes)}); ${r.referencedChunks} chunks in use`);
    return 0;
  }
  const { store } = await ctx.openStore();
  const result = await collectGarbage(store, ctx.log);
  if (ctx.json) ctx.printJson(result);
  else ctx.print(`removed ${result.removedChunks} unused chunks (${formatBytes(result.removedBytes)}); ${result.referencedChunks} chunks in use`);
  return 0;
}

export const catalogOptions: OptionSpec = { store: { type: 'string' }, ...s3Options };
export const catalogHelp = `coldvault catalog rebuild --store <dir> [--json]
  Rebuilds the SQLite catalog from the datastore's files. A damaged catalog file is first moved aside
  (catalog.sqlite.damaged-<UTC time>, with a warning); a catalog locked by another process is left alone.`;

export async function catalogCommand(ctx: CommandContext): Promise<number> {
  if (ctx.args.positionals[0] !== 'rebuild')
    throw new ColdvaultError('USAGE', `coldvault catalog: unknown subcommand '${ctx.args.positionals[0] ?? ''}' (rebuild)`);
  const s3 = ctx.s3Settings();
  const { catalog } = s3 ? await ctx.openS3Store(s3) : await ctx.openStore();
  const result = await catalog.rebuild();
  if (ctx.json) ctx.printJson(result);
  else
    ctx.print(
      `catalog rebuilt: ${result.versions} versions of ${result.guests} guests${result.skipped.length ? `; skipped ${result.skipped.length} unreadable` : ''}`,
    );
  return result.skipped.length > 0 ? 1 : 0;
}

export const protectOptions: OptionSpec = { store: { type: 'string' }, version: { type: 'string' }, off: { type: 'boolean' }, ...s3Options };
export const protectHelp = `coldvault protect <vmid> --version N [--off] --store <dir>
  Protects a version from pruning (or lifts the protection).`;

export async function protectCommand(ctx: CommandContext): Promise<number> {
  const guestId = parseGuestId(ctx.args.positionals[0] ?? '', 'vmid');
  const version = parsePositiveInt(required(ctx.args, 'version', 'protect'), '--version');
  const s3 = ctx.s3Settings();
  const request = { guestId, version, value: !flag(ctx.args, 'off') };
  if (s3) await protectS3Version({ ...request, ...(await ctx.openS3Store(s3)) });
  else await protectVersion({ ...request, ...(await ctx.openStore()) });
  ctx.print(`guest ${guestId} version ${version} is ${flag(ctx.args, 'off') ? 'no longer ' : ''}protected`);
  return 0;
}
