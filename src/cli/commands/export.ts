/**
 * `coldvault export <vmid> --version N --store S [--disk KEY]... (--socket PATH | --listen 127.0.0.1:PORT)`:
 * serves the version's disks over NBD (read-only) until SIGINT / SIGTERM; a folder, an external disk
 * mounted read-only (--device), a cluster node's datastore (--remote NODE) or an S3 datastore, and
 * encrypted versions with --keyfile. Prints one NBD URI per disk (JSON with --json), then serves.
 */
import { once } from 'node:events';
import { resolve } from 'node:path';
import { ColdvaultError, parseGuestId, parsePositiveInt } from '../../core/index.js';
import { Datastore } from '../../datastore/index.js';
import { remoteSource, s3Source, type SourceRef, startExport, type ExportRequest } from '../../pipeline/index.js';
import { mountDevice, resolveDevice, unmountDevice } from '../../targets/index.js';
import { intOption, list, required, str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';
import { keyFileOptions, keyOption } from '../key-option.js';
import { S3_HELP, s3Options } from '../s3-option.js';
import { REMOTE_HELP, remoteRef, remoteStore } from './remote-read.js';

export const exportOptions: OptionSpec = {
  store: { type: 'string' },
  version: { type: 'string' },
  disk: { type: 'string', multiple: true },
  socket: { type: 'string' },
  listen: { type: 'string' },
  device: { type: 'string' },
  remote: { type: 'string' },
  'cache-chunks': { type: 'string' },
  ...keyFileOptions,
  ...s3Options,
};

export const exportHelp = `coldvault export <vmid> --version N --store <dir> [--disk KEY]... (--socket PATH | --listen 127.0.0.1:PORT)
     [--device DEV | --remote NODE] [--keyfile FILE [--passphrase-file F]] [--cache-chunks N] [--json]
  Serves the version's disks over NBD, read-only, until interrupted: export names are the disk keys
  (scsi0, virtio0, ...), e.g. qemu-img info 'nbd+unix:///scsi0?socket=PATH'. Chunks are read when a
  client asks for them, checked (CRC, SHA-256) before a byte is served, and kept in a cache of
  --cache-chunks chunks of 4 MiB (default 16). NBD has no authentication: a unix socket (mode 0600)
  or a loopback address only. The version is held against prune while it is exported.
  --device: the external disk is mounted read-only on --store for the export.
${REMOTE_HELP}
${S3_HELP}`;

export async function exportCommand(ctx: CommandContext): Promise<number> {
  const [first, ...rest] = ctx.args.positionals;
  if (!first || rest.length > 0) throw new ColdvaultError('USAGE', 'coldvault export: name exactly one vmid');
  const guestId = parseGuestId(first, 'vmid');
  const version = parsePositiveInt(required(ctx.args, 'version', 'export'), '--version');
  const at = addressOf(ctx);
  const key = await keyOption(ctx, 'keyfile');
  const disks = list(ctx.args, 'disk').flatMap((d) => d.split(','));
  const pool = ctx.pool();
  const detach = await attachDevice(ctx);
  try {
    const from = await sourceFor(ctx);
    try {
      const request: ExportRequest = { ...from, pool, guestId, version, key, at, log: ctx.log, cacheChunks: intOption(ctx.args, 'cache-chunks', 1) };
      if (disks.length > 0) request.disks = disks;
      const running = await startExport(request);
      try {
        if (ctx.json) ctx.printJson({ address: running.address, exports: running.exports });
        else for (const e of running.exports) ctx.print(`${e.name}: ${e.uri}`);
        await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
        ctx.log.info('export ended');
      } finally {
        await running.close();
      }
      return running.troubles.length > 0 ? 1 : 0;
    } finally {
      from.source?.close(); // a remote node's kept-alive connections (or S3's) would hold the process up to 30 s
    }
  } finally {
    await detach?.();
  }
}

function addressOf(ctx: CommandContext): ExportRequest['at'] {
  const socket = str(ctx.args, 'socket');
  const listen = str(ctx.args, 'listen');
  if ((socket === undefined) === (listen === undefined)) throw new ColdvaultError('USAGE', 'coldvault export: give --socket PATH or --listen 127.0.0.1:PORT');
  if (socket !== undefined) return { socket: resolve(socket) };
  const m = /^(.+):(\d{1,5})$/.exec(listen as string);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new ColdvaultError('USAGE', `--listen '${listen}': expected HOST:PORT, e.g. 127.0.0.1:10809`);
  return { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port };
}

export async function sourceFor(ctx: CommandContext): Promise<SourceRef> {
  const remote = remoteRef(ctx);
  if (remote) return { source: remoteSource(remoteStore(ctx, remote), remote.node) };
  const s3 = ctx.s3Settings();
  if (s3) return { source: s3Source((await ctx.openS3Store(s3)).store) };
  return { store: await Datastore.open(ctx.storeDir()) };
}

/** --device: the external disk mounted read-only on --store for the export (the disk is not changed). */
export async function attachDevice(ctx: CommandContext): Promise<(() => Promise<void>) | undefined> {
  const spec = str(ctx.args, 'device');
  if (!spec) return undefined;
  if (remoteRef(ctx) || ctx.s3Settings()) throw new ColdvaultError('USAGE', `coldvault ${ctx.command}: --device goes with a folder --store`);
  const dir = ctx.storeDir();
  const device = await resolveDevice(spec);
  await mountDevice(device, dir, { readOnly: true });
  ctx.log.info(`mounted ${device.path} (${spec}) read-only on '${dir}' for the ${ctx.command}`);
  return async () => {
    await unmountDevice(dir);
    ctx.log.info(`unmounted ${device.path}: the disk may now be removed`);
  };
}
