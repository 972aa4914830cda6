/**
 * `coldvault restore <vmid> --version N --new-id M --store <dir> [--target-storage <id>] [--unique] [--force]`;
 * with `--remote NODE` from datastore --store on that node of the cluster (remote-read.ts).
 */
import { ColdvaultError, parseGuestId, parsePositiveInt } from '../../core/index.js';
import { join } from 'node:path';
import { Datastore, LockDir, S3Datastore, type S3StoreSettings } from '../../datastore/index.js';
import {
  readLiveJournal,
  remoteSource,
  resumeLiveRestore,
  s3Source,
  restoreGuest,
  restoreGuestLive,
  type RestoreOptions,
  type RestoreRequest,
  type SourceRef,
} from '../../pipeline/index.js';
import { liveRestoreSocket } from '../../guests/hypervisor/index.js';
import { mountDevice, resolveDevice, unmountDevice, unreplayedJournalWarning } from '../../targets/index.js';
import { flag, required, str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';
import { keyFileOptions, keyOption } from '../key-option.js';
import { S3_HELP, s3Options } from '../s3-option.js';
import { REMOTE_HELP, remoteRef, remoteStore, stateLocks, type RemoteRef } from './remote-read.js';

export const restoreOptions: OptionSpec = {
  store: { type: 'string' },
  version: { type: 'string' },
  'new-id': { type: 'string' },
  'guests-dir': { type: 'string' },
  storage: { type: 'string', multiple: true },
  'target-storage': { type: 'string' },
  unique: { type: 'boolean' },
  force: { type: 'boolean' },
  device: { type: 'string' },
  remote: { type: 'string' },
  live: { type: 'boolean' },
  'resume-live': { type: 'string' },
  bwlimit: { type: 'string' },
  ...keyFileOptions,
  ...s3Options,
};
export const restoreHelp = `coldvault restore <vmid> --version N --new-id M --store <dir> [--guests-dir <dir>] [--storage <id>=<dir>]... [--target-storage <id>] [--unique] [--force] [--device DEV | --remote NODE]
     [--keyfile FILE [--passphrase-file F]] [--live [--bwlimit MB/s]]
   coldvault restore --resume-live M [--store <dir> [--remote NODE]] [--keyfile FILE]
  Restores a version of a guest under a new ID: disks as vm-M-disk-K, config as M.conf. With --device
  (/dev/..., UUID=... or LABEL=...) the external disk is mounted read-only on --store for the restore,
  without journal replay and nosuid,nodev,noexec: the restore does not change a byte of the disk.
${REMOTE_HELP}
  Every chunk is checked here; that node holds the version against prune for the read (a read lease,
  kept alive while the restore runs, released at its end or when this process goes quiet).
  An encrypted version needs its key: --keyfile FILE (its passphrase: --passphrase-file F,
  COLDVAULT_KEY_PASSPHRASE, or a prompt); without it the restore is refused, naming the key's fingerprint.
${S3_HELP}
  From a bucket the version is held against prune by a read lock object while it is restored.
  --live (qemu driver): the restored guest starts within seconds on its backup (qcow2 overlays over an
  NBD export of the version) while QEMU copies its disks to their final volumes (--bwlimit MB/s caps
  the copy), then moves it onto them; the command returns then. Should this process die, the guest
  keeps running (reads of data not yet copied wait up to an hour): finish with
  coldvault restore --resume-live M (the store the restore named, or --store). Ctrl-C stops the restored guest and
  removes what the restore made.`;

export async function restoreCommand(ctx: CommandContext): Promise<number> {
  const resume = str(ctx.args, 'resume-live');
  if (resume !== undefined) return resumeLiveCommand(ctx, parseGuestId(resume, '--resume-live'));
  const [first, ...rest] = ctx.args.positionals;
  if (!first || rest.length > 0) throw new ColdvaultError('USAGE', 'coldvault restore: name exactly one vmid');
  const guestId = parseGuestId(first, 'vmid');
  const version = parsePositiveInt(required(ctx.args, 'version', 'restore'), '--version');
  const newId = parseGuestId(required(ctx.args, 'new-id', 'restore'), '--new-id');
  const remote = remoteRef(ctx);
  const key = await keyOption(ctx, 'keyfile');
  if (remote) {
    if (str(ctx.args, 'device')) throw new ColdvaultError('USAGE', 'coldvault restore: give --device or --remote, not both');
    return restoreRemote(ctx, remote, { guestId, version, newId, key });
  }
  const s3 = ctx.s3Settings();
  if (s3) {
    if (str(ctx.args, 'device')) throw new ColdvaultError('USAGE', 'coldvault restore: --device does not go with an s3:// store');
    return restoreS3(ctx, s3, { guestId, version, newId, key });
  }
  const device = str(ctx.args, 'device') ? await mountReadOnly(ctx, str(ctx.args, 'device') as string) : undefined;
  try {
    return await restoreFrom(ctx, { guestId, version, newId, key }, device !== undefined);
  } finally {
    await device?.detach();
  }
}

/** Mounts an external disk read-only (no journal replay: the disk is not changed) on --store for the restore. */
async function mountReadOnly(ctx: CommandContext, spec: string): Promise<{ detach: () => Promise<void> }> {
  const dir = ctx.storeDir();
  const device = await resolveDevice(spec);
  const warning = await unreplayedJournalWarning(device);
  await mountDevice(device, dir, { readOnly: true });
  ctx.log.info(`mounted ${device.path} (${spec}) read-only on '${dir}', without journal replay: the disk is not changed`);
  if (warning) ctx.log.warn(warning);
  return {
    detach: async () => {
      await unmountDevice(dir);
      ctx.log.info(`unmounted ${device.path}: the disk may now be removed`);
    },
  };
}

async function restoreFrom(ctx: CommandContext, wanted: Wanted, readOnly: boolean): Promise<number> {
  const { guestId, version, newId } = wanted;
  const pool = ctx.pool(); // first: the workers load their modules while the store opens
  // a read-only disk: no catalog update, and the restore's lock lives in the state dir
  const store = readOnly ? await Datastore.open(ctx.storeDir()) : (await ctx.openStore()).store;
  const result = await runRestore(ctx, {
    ...requestOf(ctx, pool, wanted),
    locks: readOnly ? new LockDir(join(ctx.config.stateDir, 'locks')) : undefined,
    store,
  });
  if (ctx.json) ctx.printJson({ id: guestId, version, newId, config: result.configPath, volumes: Object.fromEntries(result.volumes) });
  return 0;
}

interface Wanted {
  guestId: string;
  version: number;
  newId: string;
  key: RestoreOptions['key'];
}

/** From datastore --store on cluster node --remote: no catalog here, the restore's lock in the state dir. */
async function restoreRemote(ctx: CommandContext, remote: RemoteRef, wanted: Wanted): Promise<number> {
  const pool = ctx.pool();
  const source = remoteSource(remoteStore(ctx, remote), remote.node);
  try {
    const result = await runRestore(ctx, { ...requestOf(ctx, pool, wanted), locks: stateLocks(ctx), source });
    const { guestId: id, version, newId } = wanted;
    if (ctx.json)
      ctx.printJson({ id, version, newId, remote: remote.node, store: remote.store, config: result.configPath, volumes: Object.fromEntries(result.volumes) });
    return 0;
  } finally {
    source.close();
  }
}

/** From a datastore in a bucket: the catalog cache is not needed, the restore's lock in the state dir. */
async function restoreS3(ctx: CommandContext, settings: S3StoreSettings, wanted: Wanted): Promise<number> {
  const pool = ctx.pool();
  const source = s3Source(await S3Datastore.open(settings));
  try {
    const result = await runRestore(ctx, { ...requestOf(ctx, pool, wanted), locks: stateLocks(ctx), source });
    const { guestId: id, version, newId } = wanted;
    if (ctx.json) ctx.printJson({ id, version, newId, store: source.describe, config: result.configPath, volumes: Object.fromEntries(result.volumes) });
    return 0;
  } finally {
    source.close();
  }
}

function requestOf(ctx: CommandContext, pool: RestoreOptions['pool'], wanted: Wanted): RestoreOptions {
  return {
    pool,
    ...wanted,
    guestsDir: ctx.config.guestsDir,
    storages: ctx.config.storages,
    targetStorage: str(ctx.args, 'target-storage'),
    unique: flag(ctx.args, 'unique'),
    force: flag(ctx.args, 'force'),
    log: ctx.log,
    onProgress: (p) => ctx.bar.update(p),
  };
}

/** A plain restore, or with --live a restore-on-the-fly (qemu driver only). */
async function runRestore(ctx: CommandContext, req: RestoreRequest): Promise<{ configPath: string; volumes: Map<string, string> }> {
  if (!flag(ctx.args, 'live')) {
    if (str(ctx.args, 'bwlimit') !== undefined) throw new ColdvaultError('USAGE', 'coldvault restore: --bwlimit caps the copy of a --live restore; add --live');
    return restoreGuest(req);
  }
  const qmpSocket = liveQmpSocket(ctx, req.newId);
  return withInterrupt((abort) =>
    restoreGuestLive({
      ...req,
      qmpSocket,
      stateDir: ctx.config.stateDir,
      accel: ctx.config.hypervisor?.accel,
      speed: bwlimitOf(ctx),
      abort,
      storeName: req.source && !ctx.s3Settings() ? undefined : str(ctx.args, 'store'),
    }),
  );
}

/** Where the restored guest's QMP socket goes: the qemu driver's; other drivers cannot run a guest on an NBD export. */
function liveQmpSocket(ctx: CommandContext, newId: string): string {
  return liveRestoreSocket(ctx.driver(), newId, { asked: 'restore --live', instead: 'restore without --live' });
}

function bwlimitOf(ctx: CommandContext): number | undefined {
  const text = str(ctx.args, 'bwlimit');
  if (text === undefined) return undefined;
  const mb = Number(text);
  if (!Number.isFinite(mb) || mb <= 0) throw new ColdvaultError('USAGE', `--bwlimit '${text}': expected a positive number of MB/s`);
  return Math.round(mb * 1_000_000);
}

async function withInterrupt<T>(run: (abort: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  process.once('SIGINT', stop).once('SIGTERM', stop);
  try {
    return await run(abort.signal);
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
  }
}

/** `restore --resume-live M` with the store options of the restore it finishes. */
async function resumeLiveCommand(ctx: CommandContext, newId: string): Promise<number> {
  if (ctx.args.positionals.length > 0) throw new ColdvaultError('USAGE', 'coldvault restore --resume-live M: name no vmid (the journal names it)');
  const pool = ctx.pool();
  const key = await keyOption(ctx, 'keyfile');
  const journal = await readLiveJournal(ctx.config.stateDir, newId);
  if (journal?.store && str(ctx.args, 'store') === undefined && !remoteRef(ctx)) ctx.args.values.store = journal.store; // the store the restore named
  const { ref, close } = await liveSource(ctx);
  try {
    const result = await withInterrupt((abort) =>
      resumeLiveRestore({
        ...ref,
        pool,
        newId,
        key,
        stateDir: ctx.config.stateDir,
        log: ctx.log,
        speed: bwlimitOf(ctx),
        onProgress: (p) => ctx.bar.update(p),
        abort,
      }),
    );
    if (ctx.json) ctx.printJson({ newId, config: result.configPath, running: result.running });
    return 0;
  } finally {
    close();
  }
}

async function liveSource(ctx: CommandContext): Promise<{ ref: SourceRef; close: () => void }> {
  const remote = remoteRef(ctx);
  if (remote) {
    const source = remoteSource(remoteStore(ctx, remote), remote.node);
    return { ref: { source }, close: () => source.close() };
  }
  const s3 = ctx.s3Settings();
  if (s3) {
    const source = s3Source(await S3Datastore.open(s3));
    return { ref: { source }, close: () => source.close() };
  }
  return { ref: { store: (await ctx.openStore()).store }, close: () => undefined };
}
