/**
 * `coldvault list [<vmid>] --store <dir> [--json]`; with `--remote NODE` the versions of datastore
 * --store on that node of the cluster, as its server lists them (remote-read.ts).
 */
import { describeError, formatBytes, parseGuestId } from '../../core/index.js';
import { versionJson, type BootTestRecord } from '../../catalog/index.js';
import type { Datastore } from '../../datastore/index.js';
import { openManifest, type VersionKey } from '../../format/index.js';
import type { RemoteStore } from '../../targets/index.js';
import type { OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';
import { keyFileOptions, keyOption } from '../key-option.js';
import { REMOTE_HELP, remoteRef, remoteStore } from './remote-read.js';
import { S3_HELP, s3Options } from '../s3-option.js';

export const listOptions: OptionSpec = { store: { type: 'string' }, remote: { type: 'string' }, ...keyFileOptions, ...s3Options };
export const listHelp = `coldvault list [<vmid>] --store <dir> [--remote NODE] [--keyfile FILE] [--json]
  Lists the versions in a datastore (all guests, or one); encrypted ones name their key. With --keyfile
  FILE each version's guest configuration is shown too (json: "config"), those encrypted with that key
  opened and their manifest authenticated (a version of another key says so).
${REMOTE_HELP}
${S3_HELP}`;

/** What a line shows of a version (`coldvault list --json` has every field). */
interface Listed {
  id: string;
  version: number;
  time: string;
  name: string;
  logicalBytes: number;
  storedBytes: number;
  verifyState: string;
  protected: boolean;
  keyFingerprint?: string | null;
  bootTest?: BootTestRecord | null;
  /** with --keyfile: the guest config, or why it is not shown */
  config?: string;
}

export async function listCommand(ctx: CommandContext): Promise<number> {
  const guestId = ctx.args.positionals[0] ? parseGuestId(ctx.args.positionals[0], 'vmid') : undefined;
  const remote = remoteRef(ctx);
  if (remote) {
    const versions = await remoteVersions(remoteStore(ctx, remote), guestId);
    show(ctx, versions, versions);
  } else {
    const key = await keyOption(ctx, 'keyfile');
    const s3 = ctx.s3Settings();
    const { store, catalog } = s3 ? await ctx.openS3Store(s3) : await ctx.openStore();
    const versions = catalog.listVersions(guestId);
    const configs = key ? await Promise.all(versions.map((v) => configOf(store, key, v.guestId, v.version))) : [];
    show(
      ctx,
      versions.map((v, i) => ({ ...versionJson(v), ...(key ? { config: configs[i] } : {}) })),
      versions.map((v, i) => ({ ...v, id: v.guestId, config: configs[i] })),
    );
  }
  return 0;
}

/** The guest config of a version, opened with `key` when it is encrypted with it; else the reason it is not shown. */
async function configOf(store: Pick<Datastore, 'readManifest'>, key: VersionKey, guestId: string, version: number): Promise<string> {
  const what = `version ${version} of guest ${guestId}`;
  try {
    return openManifest(await store.readManifest(guestId, version), key, { guestId, version }, what).config;
  } catch (err) {
    return `# not shown: ${describeError(err)}\n`;
  }
}

function show(ctx: CommandContext, json: unknown[], lines: Listed[]): void {
  if (ctx.json) ctx.printJson(json);
  else ctx.print(lines.length === 0 ? 'no backups' : lines.map(toLine).join('\n'));
}

/** The versions of one guest, or of every guest with versions, in the remote store. */
async function remoteVersions(remote: RemoteStore, guestId: string | undefined): Promise<Listed[]> {
  try {
    const guests = guestId ? [guestId] : await remote.listGuests();
    const lists = [];
    for (const id of guests) lists.push(await remote.listVersions(id));
    return lists.flat();
  } finally {
    remote.close();
  }
}

function toLine(v: Listed): string {
  const date = v.time.slice(0, 10);
  const flags = [v.verifyState, bootFlag(v.bootTest), v.protected ? 'protected' : '', v.keyFingerprint ? `encrypted (key ${v.keyFingerprint})` : '']
    .filter(Boolean)
    .join(', ');
  const line = `ID: ${v.id}, Version: ${v.version} (${date}), name: ${v.name || '-'}, size: ${formatBytes(v.logicalBytes)}, new: ${formatBytes(v.storedBytes)}, ${flags}`;
  if (v.config === undefined) return line;
  return [
    line,
    ...v.config
      .trimEnd()
      .split('\n')
      .map((l) => `    ${l}`),
  ].join('\n');
}

/** `boots (12.3 s)` or `boot test FAILED`; nothing when never boot-tested. */
function bootFlag(boot: BootTestRecord | null | undefined): string {
  if (!boot) return '';
  return boot.ok ? `boots (${boot.seconds} s)` : 'boot test FAILED';
}
