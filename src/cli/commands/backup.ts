/** `coldvault backup <vmid>... --store <dir> [--keep N] [--compress zstd|none] [--zstd-level N] [--snapshot auto|off] [--full]` */
import { ColdvaultError, describeError, formatBytes, parseGuestId } from '../../core/index.js';
import { removeLeftoverSnapshots, snapshotGuestDisks, type GuestSnapshots, type SnapshotMode } from '../../jobs/index.js';
import type { Catalog } from '../../catalog/index.js';
import type { Datastore } from '../../datastore/index.js';
import { backupGuest, S3Target, type BackupRequest, type BackupResult, type DiskReadReport } from '../../pipeline/index.js';
import { flag, intOption, str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';
import { encryptOptions, keyOption } from '../key-option.js';
import { S3_HELP, s3Options } from '../s3-option.js';

export const backupOptions: OptionSpec = {
  store: { type: 'string' },
  'guests-dir': { type: 'string' },
  storage: { type: 'string', multiple: true },
  keep: { type: 'string' },
  compress: { type: 'string' },
  'zstd-level': { type: 'string' },
  snapshot: { type: 'string' },
  full: { type: 'boolean' },
  'object-lock-days': { type: 'string' },
  ...encryptOptions,
  ...s3Options,
};

export const backupHelp = `coldvault backup <vmid>... --store <dir> [--guests-dir <dir>] [--storage <id>=<dir>]... [--keep N] [--compress zstd|none] [--zstd-level N]
     [--snapshot auto|off] [--full] [--encrypt KEYFILE [--passphrase-file F]] [--json]
  Backs up the guests (their disks must not change meanwhile: stop them, or use 'coldvault job run').
  --snapshot auto (default): the disks' cold snapshots (reflink clones on XFS reflink=1 or btrfs), made as
  the backup starts, are read instead of the disks, and each is kept as the disk's base for this datastore
  (the next backup reads only what changed since); where a disk cannot have one, the disks are read (one
  log line says why); snapshots left by runs that died are removed first. off: the disks are read.
  --full: read every chunk, also where a changed-extent nightly would take unchanged ones from a base snapshot.
  --encrypt KEYFILE: the version is encrypted with that key (coldvault key create): chunks AES-256-GCM under
  keyed names, the config sealed, manifest and indexes authenticated; restore needs the key (--keyfile).
  Its passphrase: --passphrase-file F, COLDVAULT_KEY_PASSPHRASE, or a prompt.
  --object-lock-days N (an s3:// datastore made with Object Lock): keep this version immutable N days, at least
  the datastore's own days.
${S3_HELP}`;

export async function backupCommand(ctx: CommandContext): Promise<number> {
  const ids = ctx.args.positionals.map((v) => parseGuestId(v, 'vmid'));
  if (ids.length === 0) throw new ColdvaultError('USAGE', 'coldvault backup: name at least one vmid');
  const keep = intOption(ctx.args, 'keep', 1);
  const zstdLevel = compressionLevel(str(ctx.args, 'compress'), intOption(ctx.args, 'zstd-level', 1) ?? ctx.config.zstdLevel);
  const snapshot = snapshotOption(str(ctx.args, 'snapshot'));
  const encryption = await keyOption(ctx, 'encrypt'); // before anything else: a wrong passphrase stops here
  const pool = ctx.pool(); // first: the workers load their modules while the store and catalog open
  const where = await openTarget(ctx);
  if (snapshot === 'auto') await removeLeftoverSnapshots(ctx.config, ctx.log); // of runs that died (kill -9, power cut)
  const results: unknown[] = [];
  let failed = 0;
  for (const guestId of ids) {
    try {
      const r = await withSnapshots(snapshot, ctx, {
        ...where,
        pool,
        guestsDir: ctx.config.guestsDir,
        storages: ctx.config.storages,
        allowDiskPaths: ctx.config.allowDiskPaths,
        guestId,
        node: ctx.config.node,
        zstdLevel,
        encryption,
        keep,
        full: flag(ctx.args, 'full'),
        log: ctx.log,
        onProgress: (p) => ctx.bar.update(p),
      });
      const m = r.manifest;
      results.push({
        id: guestId,
        version: m.version,
        time: m.time,
        name: m.guestName,
        ok: true,
        size: m.disks.reduce((s, d) => s + d.size, 0),
        newBytes: m.newBytes,
        storedBytes: m.storedBytes,
        seconds: r.seconds,
        pruned: r.pruned,
        reads: r.reads.map(({ key, fileReadBytes, baseBytes, baseVersion, fullReason }) => ({ key, fileReadBytes, baseBytes, baseVersion, fullReason })),
      });
      if (!ctx.json) ctx.print(`backed up guest ${guestId} as version ${m.version} (${formatBytes(m.storedBytes)} new in the store)`);
    } catch (err) {
      failed++;
      results.push({ id: guestId, ok: false, error: describeError(err), code: (err as { code?: string }).code });
      if (ids.length === 1) {
        if (ctx.json) ctx.printJson(results);
        throw err;
      }
    }
  }
  if (ctx.json) ctx.printJson(results);
  return failed > 0 ? 1 : 0;
}

function compressionLevel(compress: string | undefined, level: number): number {
  if (compress === undefined || compress === 'zstd') {
    if (level > 19) throw new ColdvaultError('USAGE', `--zstd-level ${level}: expected 1 to 19`);
    return level;
  }
  if (compress === 'none' || compress === '0') return 0;
  throw new ColdvaultError('USAGE', `--compress '${compress}': expected zstd or none`);
}

function snapshotOption(value: string | undefined): SnapshotMode {
  if (value === undefined || value === 'auto') return 'auto';
  if (value === 'off') return 'off';
  throw new ColdvaultError('USAGE', `--snapshot '${value}': expected auto or off`);
}

/** The datastore of --store: a folder (and its catalog), or a bucket (s3://) as a target. */
async function openTarget(ctx: CommandContext): Promise<{ store: Datastore; catalog: Catalog } | { target: S3Target }> {
  const s3 = ctx.s3Settings();
  const lockDays = intOption(ctx.args, 'object-lock-days', 1);
  if (!s3) {
    if (lockDays !== undefined) throw new ColdvaultError('USAGE', '--object-lock-days goes with an s3:// datastore (S3 Object Lock)');
    return ctx.openStore();
  }
  const { store, catalog } = await ctx.openS3Store(s3);
  return { target: new S3Target(store, catalog, { lockDays }) };
}

/** the datastore's id (a folder's or a bucket's: both can hold cold-snapshot bases) */
function datastoreIdOf(req: BackupRequest): string {
  return 'target' in req ? (req.target.datastoreId ?? '') : req.store.identity.id;
}

/** The backup, reading the disks' cold snapshots (auto) when every disk can have one; they are removed afterwards. */
async function withSnapshots(mode: SnapshotMode, ctx: CommandContext, req: BackupRequest): Promise<BackupResult> {
  if (mode === 'off') return backupGuest(req);
  let snapshots: GuestSnapshots | undefined;
  let published = false;
  let reads: readonly DiskReadReport[] = [];
  try {
    return await backupGuest({
      ...req,
      beforeArchive: async (log, disks) => {
        snapshots = await snapshotGuestDisks(req.guestId, disks, req.storages, log);
        return snapshots?.readPlans(datastoreIdOf(req));
      },
      afterArchive: (_m, _dir, _log, diskReads) => {
        published = true;
        reads = diskReads;
        return Promise.resolve();
      },
    });
  } finally {
    await snapshots?.settleAfterRun(published, ctx.log, { datastoreId: datastoreIdOf(req), reads });
  }
}
